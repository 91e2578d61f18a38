using System.Diagnostics;
using System.Globalization;
using ControlPlane.Scheduler;
using ControlPlane.Scheduler.Redis;
using ControlPlane.Scheduler.Redis.Bench;
using ControlPlane.Tests.Support;
using ControlPlane.V1;
using StackExchange.Redis;

// Usage: ControlPlane.Scheduler.Redis.Bench [chainRuns] [chainLength] [fanOutRuns] [fanOutWidth] [claimers]
var chainRuns = Arg(0, 200);
var chainLength = Arg(1, 20);
var fanRuns = Arg(2, 4);
var fanWidth = Arg(3, 1000);
var claimers = Arg(4, 4);

await using var redis = new RedisServer();
await redis.StartAsync();
var config = redis.Configuration;
using var admin = await ConnectionMultiplexer.ConnectAsync(config + ",allowAdmin=true");
var server = admin.GetServer(admin.GetEndPoints()[0]);
Console.WriteLine($"redis-server {server.Version} on port {redis.Port}; {claimers} concurrent claimers, claim batch 128, report batch 256");
Console.WriteLine();

await new Scenario("no-op chain", $"{chainRuns} runs x {chainLength}-step chain", config, server, claimers,
    Enumerable.Range(0, chainRuns).Select(_ => Specs.Chain(chainLength)).ToList()).RunAsync();
await new Scenario("wide fan-out", $"{fanRuns} runs x (1 root -> {fanWidth} -> 1 join)", config, server, claimers,
    Enumerable.Range(0, fanRuns).Select(_ => Specs.FanOut(fanWidth)).ToList()).RunAsync();

static int Arg(int index, int fallback) =>
    Environment.GetCommandLineArgs().Length > index + 1 ? int.Parse(Environment.GetCommandLineArgs()[index + 1], CultureInfo.InvariantCulture) : fallback;
