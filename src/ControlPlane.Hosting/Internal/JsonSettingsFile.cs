using Microsoft.Extensions.Configuration;

namespace ControlPlane.Hosting.Internal;

/// <summary>
/// Reads a JSON settings file through Microsoft.Extensions.Configuration's JSON provider into flat entries: a top-level
/// key is a setting; an object under it gives nested keys (a map), an array gives indexed items (a list). Deeper nesting
/// has no meaning in the scheme and is refused.
/// </summary>
internal static class JsonSettingsFile
{
    /// <summary>One value: the setting key as written, the nested key or index (null for a plain value), the text, and the key path for messages.</summary>
    public sealed record Entry(string Key, string? SubKey, string Value, string Path);

    /// <summary>
    /// The entries of <paramref name="path"/>, or of its top-level object <paramref name="section"/> when one is named (none
    /// when the file lacks it). Throws <see cref="FormatException"/> saying what is wrong with the file.
    /// </summary>
    public static IReadOnlyList<Entry> Read(string path, string? section = null)
    {
        IConfigurationRoot root;
        try
        {
            root = new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(path), optional: false, reloadOnChange: false).Build();
        }
        catch (InvalidDataException ex) when (ex.GetBaseException() is FormatException)
        {
            // The provider's word for a root that is not an object.
            throw new FormatException($"{path} must hold a JSON object of settings, e.g. {{ \"Slots\": 4 }}", ex);
        }
        catch (InvalidDataException ex)
        {
            throw new FormatException($"{path} is not valid JSON: {ex.GetBaseException().Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"{path} cannot be read: {ex.Message}", ex);
        }

        IConfiguration settings = root;
        var prefix = string.Empty;
        if (section is not null)
        {
            var found = root.GetChildren().FirstOrDefault(c => c.Key.Equals(section, StringComparison.OrdinalIgnoreCase));
            if (found is null)
            {
                return [];
            }

            settings = found;
            prefix = found.Key + ":";
        }

        var entries = new List<Entry>();
        foreach (var (key, value) in settings.AsEnumerable(makePathsRelative: true))
        {
            // Null: an object or array node (its children come as their own keys), or a JSON null, which sets nothing.
            if (value is null)
            {
                continue;
            }

            var parts = key.Split(ConfigurationPath.KeyDelimiter);
            if (parts.Length > 2)
            {
                throw new FormatException(
                    $"JSON key {prefix}{string.Join(':', parts[..2])} in {path} holds an object or an array; settings nest one level at most, e.g. {{ \"Labels\": {{ \"team\": \"vision\" }} }}");
            }

            entries.Add(new Entry(parts[0], parts.Length == 2 ? parts[1] : null, value, prefix + key));
        }

        return entries;
    }
}
