using System.Globalization;
using System.Text.Json;

namespace ControlPlane.Hosting.Internal;

/// <summary>
/// Reads a JSON settings file into flat entries: a top-level key is a setting; an object under it gives nested keys (a map),
/// an array gives indexed items (a list). Deeper nesting has no meaning in the scheme and is refused.
/// </summary>
internal static class JsonSettingsFile
{
    private static readonly JsonDocumentOptions Options = new() { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip };

    /// <summary>One value: the setting key as written, the nested key or index (null for a plain value), the text, and the key path for messages.</summary>
    public sealed record Entry(string Key, string? SubKey, string Value, string Path);

    /// <summary>The root object of <paramref name="path"/>; throws <see cref="FormatException"/> saying what is wrong with the file.</summary>
    public static JsonElement ReadRoot(string path)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), Options);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{path} is not valid JSON: {ex.Message}", ex);
        }
        catch (IOException ex)
        {
            throw new FormatException($"{path} cannot be read: {ex.Message}", ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new FormatException($"{path} cannot be read: {ex.Message}", ex);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"{path} must hold a JSON object of settings, e.g. {{ \"Slots\": 4 }}");
            }

            return document.RootElement.Clone();
        }
    }

    /// <summary>The entries of <paramref name="settings"/>, an object of settings; <paramref name="pathPrefix"/> goes before key paths in messages.</summary>
    public static IReadOnlyList<Entry> Flatten(JsonElement settings, string pathPrefix, string file)
    {
        var entries = new List<Entry>();
        foreach (var property in settings.EnumerateObject())
        {
            var path = pathPrefix + property.Name;
            switch (property.Value.ValueKind)
            {
                case JsonValueKind.Null:
                    break;
                case JsonValueKind.Object:
                    foreach (var nested in property.Value.EnumerateObject())
                    {
                        entries.Add(new Entry(property.Name, nested.Name, Scalar(nested.Value, $"{path}:{nested.Name}", file), $"{path}:{nested.Name}"));
                    }

                    break;
                case JsonValueKind.Array:
                    var index = 0;
                    foreach (var item in property.Value.EnumerateArray())
                    {
                        var itemPath = $"{path}:{index.ToString(CultureInfo.InvariantCulture)}";
                        entries.Add(new Entry(property.Name, index.ToString(CultureInfo.InvariantCulture), Scalar(item, itemPath, file), itemPath));
                        index++;
                    }

                    break;
                default:
                    entries.Add(new Entry(property.Name, null, Scalar(property.Value, path, file), path));
                    break;
            }
        }

        return entries;
    }

    private static string Scalar(JsonElement value, string path, string file) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => throw new FormatException($"JSON key {path} in {file} holds {Describe(value.ValueKind)}; settings nest one level at most, e.g. {{ \"Labels\": {{ \"team\": \"vision\" }} }}"),
    };

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        _ => "null",
    };
}
