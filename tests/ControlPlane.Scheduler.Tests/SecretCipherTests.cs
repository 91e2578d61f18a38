using System.Security.Cryptography;
using System.Text;
using ControlPlane.Scheduler.Security;
using Xunit;

namespace ControlPlane.Scheduler.Tests;

/// <summary>The one cipher every namespace's vault shares, used from many threads at once.</summary>
public sealed class SecretCipherTests
{
    [Fact]
    public async Task Open_ConcurrentlyWithAFailingOpenOfTheSameBytes_AlwaysOpensItsOwn()
    {
        // Agents of two namespaces claim at once: one opens a value sealed for it, the other the same bytes copied into
        // its namespace, which must fail. The failing open must never make the good one fail.
        using var cipher = new SecretCipher(RandomNumberGenerator.GetBytes(SecretCipher.KeyLength));
        var sealedValue = cipher.Seal(SecretCipher.AssociatedData("a", "db-password"), Encoding.UTF8.GetBytes("hunter2"));
        const int Rounds = 200_000;
        using var start = new Barrier(2);

        var good = Task.Run(() =>
        {
            start.SignalAndWait();
            var failures = 0;
            for (var i = 0; i < Rounds; i++)
            {
                try
                {
                    _ = cipher.Open(SecretCipher.AssociatedData("a", "db-password"), sealedValue);
                }
                catch (CryptographicException)
                {
                    failures++;
                }
            }

            return failures;
        });
        var copied = Task.Run(() =>
        {
            start.SignalAndWait();
            var opened = 0;
            for (var i = 0; i < Rounds; i++)
            {
                try
                {
                    _ = cipher.Open(SecretCipher.AssociatedData("b", "db-password"), sealedValue);
                    opened++;
                }
                catch (CryptographicException)
                {
                }
            }

            return opened;
        });

        Assert.Equal(0, await good);
        Assert.Equal(0, await copied);
    }
}
