using System.Net;
using ControlPlane.InteropServer.Internal;
using ControlPlane.Rpc;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

// grpc.testing.TestService served by ControlPlane.Rpc over h2c on 127.0.0.1, for the gRPC
// interop cases. Usage: ControlPlane.InteropServer --port=N [--use_tls=false]
if (!ServerArguments.TryParse(args, out var arguments, out var error))
{
    await Console.Error.WriteLineAsync(error);
    return 2;
}

var builder = WebApplication.CreateSlimBuilder();
builder.Logging.SetMinimumLevel(LogLevel.Warning);
builder.WebHost.ConfigureKestrel(kestrel =>
    kestrel.Listen(IPAddress.Loopback, arguments.Port, listen => listen.Protocols = HttpProtocols.Http2));
builder.Services.AddRpc(options => options.MaxReceiveMessageSize = 16 * 1024 * 1024);

await using var app = builder.Build();
// Records each request message's compressed flag, which the expect_compressed checks read.
app.Use(RequestFrameObserver.Middleware);
app.MapRpcService(TestServiceDefinition.Create());
await app.StartAsync();

var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
    .Features.Get<IServerAddressesFeature>()!.Addresses.First();
Console.WriteLine($"listening on 127.0.0.1:{new Uri(address).Port}");

await app.WaitForShutdownAsync();
return 0;
