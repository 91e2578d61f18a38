using System.Security.Cryptography;
using ControlPlane.Scheduler.Internal;
using ControlPlane.Scheduler.Services;
using ControlPlane.V1;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Scheduler.Security;

/// <summary>
/// The secrets of one namespace: the store (sealed values only) and the cipher (null when no key is
/// configured). Values are opened here, in the scheduler, only when an assignment that needs them is sent; the claim
/// scripts never see the key.
/// </summary>
/// <param name="ns">The namespace whose secrets these are; values are sealed for it.</param>
/// <param name="opensUnboundValues">
/// Whether values sealed for their name alone (before secrets belonged to a namespace) still open: true for the
/// default namespace only, where every secret lived then.
/// </param>
internal sealed class SecretVault(ISecretStore store, SecretCipher? cipher, ILogger logger, string ns = "default", bool opensUnboundValues = false)
{
    /// <summary>Seals a value for the secret <paramref name="name"/> of this namespace.</summary>
    public byte[] Seal(SecretCipher key, string name, ReadOnlySpan<byte> value) => key.Seal(SecretCipher.AssociatedData(ns, name), value);

    private byte[] Open(SecretCipher key, string name, ReadOnlySpan<byte> sealedValue)
    {
        try
        {
            return key.Open(SecretCipher.AssociatedData(ns, name), sealedValue);
        }
        catch (CryptographicException) when (opensUnboundValues)
        {
            return key.Open(name, sealedValue);
        }
    }

    public ISecretStore Store { get; } = store;

    /// <summary>The cipher, or FAILED_PRECONDITION saying how to configure a key.</summary>
    public SecretCipher RequireCipher() => cipher ?? throw new RpcException(new Grpc.Core.Status(
        StatusCode.FailedPrecondition,
        "this scheduler has no secrets key, so it cannot store secrets: start it with --secrets-key-file PATH (CP_SECRETS_KEY_FILE), a file holding a 32-byte key made with: umask 077; openssl rand -base64 32 > PATH"));

    /// <summary>
    /// INVALID_ARGUMENT naming each <c>steps[i].secrets[j]</c> that is not a stored secret, or is limited to queues
    /// that do not include the step's queue.
    /// </summary>
    public async Task ThrowIfUnusableAsync(RunSpec spec, CancellationToken cancellationToken)
    {
        var names = spec.Steps.SelectMany(s => s.Secrets).Where(RunSpecValidator.IsValidName).ToHashSet(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            return;
        }

        var found = await Store.GetSecretsAsync(names, cancellationToken).ConfigureAwait(false);
        var violations = new List<BadRequest.Types.FieldViolation>();
        for (var i = 0; i < spec.Steps.Count; i++)
        {
            var step = spec.Steps[i];
            var queue = StepDefaults.QueueOf(spec, step);
            for (var j = 0; j < step.Secrets.Count; j++)
            {
                var name = step.Secrets[j];
                string? problem = null;
                if (!found.TryGetValue(name, out var secret))
                {
                    problem = $"no secret named '{name}'; create it with: cpctl secret set {name} ('cpctl secret ls' lists the secrets)";
                }
                else if (!secret.Allows(queue))
                {
                    problem = $"secret '{name}' is limited to queues {string.Join(", ", secret.Queues)}; step '{step.Id}' runs on queue '{queue}', so it may not use it (put the step on one of those queues, or add '{queue}' with cpctl secret set {name} --queues)";
                }

                if (problem is not null && violations.Count < RpcErrors.MaxViolations)
                {
                    violations.Add(new() { Field = $"steps[{i}].secrets[{j}]", Description = problem });
                }
            }
        }

        if (violations.Count > 0)
        {
            throw RpcErrors.BadRequest(string.Join("; ", violations.Take(5).Select(v => $"{v.Field}: {v.Description}")), violations);
        }
    }

    /// <summary>
    /// Adds to each assignment the values of the secrets its spec names that exist, open with the key and allow the
    /// step's queue. A name left out makes the agent fail the attempt, saying the secret is not available.
    /// </summary>
    public async Task AttachAsync(IReadOnlyList<Assignment> assignments, CancellationToken cancellationToken)
    {
        var names = assignments.Where(a => a.Spec is not null).SelectMany(a => a.Spec.Secrets).ToHashSet(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            return;
        }

        var found = await Store.GetSecretsAsync(names, cancellationToken).ConfigureAwait(false);
        var opened = new Dictionary<string, ByteString>(StringComparer.Ordinal);
        foreach (var (name, secret) in found)
        {
            if (cipher is null)
            {
                SecretUnreadable(name, "no secrets key is configured");
                continue;
            }

            try
            {
                opened[name] = ByteString.CopyFrom(Open(cipher, name, secret.Sealed.Span));
            }
            catch (CryptographicException ex)
            {
                SecretUnreadable(name, ex.Message);
            }
        }

        foreach (var assignment in assignments)
        {
            foreach (var name in assignment.Spec?.Secrets ?? [])
            {
                if (opened.TryGetValue(name, out var value) && found[name].Allows(assignment.Spec!.Queue))
                {
                    assignment.Secrets[name] = value;
                }
            }
        }
    }

    private void SecretUnreadable(string name, string reason) => SecurityLog.SecretUnreadable(logger, name, reason);
}
