using System.Globalization;
using System.Text;

namespace ControlPlane.Scheduler.Redis.Internal;

/// <summary>The label index (format 2): one sorted set of run ids per label pair, scored by submit order.</summary>
internal static class LabelIndex
{
    /// <summary>The key of one pair, as common.lua's LBL builds it: the key's length in bytes first, so no pair spells another's key.</summary>
    public static string Key(string prefix, string key, string value) =>
        prefix + "lbl:" + Encoding.UTF8.GetByteCount(key).ToString(CultureInfo.InvariantCulture) + ":" + key + "=" + value;
}
