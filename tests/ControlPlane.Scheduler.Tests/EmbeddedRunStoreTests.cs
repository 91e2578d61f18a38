namespace ControlPlane.Scheduler.Tests;

public sealed class EmbeddedRunStoreTests : RunStoreContractTests
{
    protected override Task<IRunStore> CreateStoreAsync(RunStoreOptions options, TimeProvider time) =>
        Task.FromResult<IRunStore>(new EmbeddedRunStore(options, time));
}
