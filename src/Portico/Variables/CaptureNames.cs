using Portico.Compilation;
using Portico.Config.Model;
using Portico.Config.Syntax;

namespace Portico.Variables;

/// <summary>Regexes of rewrite, if and map, kept with their directive so their capture names can be checked.</summary>
public sealed class CaptureDeclarations : Settings<CaptureDeclarations>
{
    public List<(PcreRegex Regex, Directive Source)> Regexes { get; } = [];

    public override void MergeFrom(CaptureDeclarations parent)
    {
    }
}

/// <summary>
/// nginx declares each named capture as a changeable variable (ngx_http_regex_compile); a name that is a
/// built-in which cannot change ("uri", "host" ...) is "the duplicate" variable.
/// </summary>
public static class CaptureNames
{
    public static void Check(SnapshotBuilder snapshot)
    {
        var http = snapshot.Model.Http;
        if (http is null)
        {
            return;
        }

        foreach (var server in http.Servers)
        {
            foreach (var name in server.Names)
            {
                if (name.Regex is not null)
                {
                    Check(snapshot, name.Regex, name.File, name.Line);
                }
            }

            foreach (var location in server.Locations)
            {
                CheckLocation(snapshot, location);
            }
        }

        foreach (var (regex, source) in http.Settings.Get<CaptureDeclarations>().Regexes)
        {
            Check(snapshot, regex, source.File, source.Line);
        }
    }

    private static void CheckLocation(SnapshotBuilder snapshot, LocationBlock location)
    {
        if (location.Regex is not null)
        {
            Check(snapshot, location.Regex, location.Source.File, location.Source.Line);
        }

        foreach (var child in location.Children)
        {
            CheckLocation(snapshot, child);
        }
    }

    private static void Check(SnapshotBuilder snapshot, PcreRegex regex, string file, int line)
    {
        foreach (var (name, _) in regex.Names)
        {
            if (snapshot.Variables.FindRegistered(name) is { Changeable: false })
            {
                snapshot.Errors.Add(new Diagnostic(LogLevel.Emerg, $"the duplicate \"{name}\" variable", file, line));
            }
        }
    }
}
