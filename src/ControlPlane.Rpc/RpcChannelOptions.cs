using System.Net.Security;

namespace ControlPlane.Rpc;

/// <summary>Options of an <see cref="RpcChannel"/>; validated by <see cref="RpcChannel.ForAddress"/>.</summary>
public sealed class RpcChannelOptions
{
    /// <summary>Largest response message accepted, in bytes (after decompression). Default is 4 MiB.</summary>
    public int MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Largest request message sent, in bytes; null means no limit. Default is null.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>Idle time after which the connection is probed with an HTTP/2 PING. Default is 60 s.</summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How long a PING may go unanswered before the connection is closed. Default is 20 s.</summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Validates the server certificate on https:// addresses; null uses the system trust store. Default is null.</summary>
    public RemoteCertificateValidationCallback? ServerCertificateValidation { get; set; }

    /// <summary>
    /// Replaces the SocketsHttpHandler the channel builds (tests, custom transports); the channel does not
    /// dispose it, and the keep-alive and certificate options above do not apply to it. Default is null.
    /// </summary>
    public HttpMessageHandler? HttpHandler { get; set; }
}
