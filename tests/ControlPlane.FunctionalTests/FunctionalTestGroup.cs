using ControlPlane.Tests.Support;
using Xunit;

namespace ControlPlane.FunctionalTests;

/// <summary>Every functional test shares one real redis-server; each test uses its own store namespace.</summary>
[CollectionDefinition(Name)]
public sealed class FunctionalTestGroup : ICollectionFixture<RedisServerFixture>
{
    public const string Name = "functional";
}
