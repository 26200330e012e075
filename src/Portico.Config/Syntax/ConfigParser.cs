using System.Text;

namespace Portico.Config.Syntax;

/// <summary>The files a configuration was read from, in the order nginx opens them (for -T).</summary>
public sealed class ConfigDump
{
    private readonly List<(string Path, string Text)> _files = [];

    public IReadOnlyList<(string Path, string Text)> Files => _files;

    internal void Add(string path, string text)
    {
        foreach (var (p, _) in _files)
        {
            if (p == path)
            {
                return;
            }
        }

        _files.Add((path, text));
    }

    /// <summary>nginx -T output: each file prefixed by "# configuration file PATH:".</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        foreach (var (path, text) in _files)
        {
            sb.Append("# configuration file ").Append(path).Append(":\n");
            sb.Append(text);
            if (text.Length > 0 && text[^1] != '\n')
            {
                sb.Append('\n');
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }
}

/// <summary>
/// nginx's configuration syntax: the tokenizer of ngx_conf_read_token and the block structure of
/// ngx_conf_parse, with "include" expanded where it stands. Errors stop parsing, as in nginx.
/// </summary>
public sealed class ConfigParser
{
    /// <summary>The pseudo file name nginx uses for -g directives.</summary>
    public const string CommandLine = "command line";

    private readonly IConfigFileSystem _fs;
    private readonly string _confPrefix;
    private readonly ConfigDump _dump;
    private int _includeDepth;

    public ConfigParser(IConfigFileSystem fs, string confPrefix, ConfigDump? dump = null)
    {
        _fs = fs;
        _confPrefix = confPrefix.EndsWith('/') ? confPrefix : confPrefix + "/";
        _dump = dump ?? new ConfigDump();
    }

    public ConfigDump Dump => _dump;

    /// <summary>Parses a whole file (the main configuration).</summary>
    public List<Directive> ParseFile(string path)
    {
        if (!_fs.FileExists(path))
        {
            throw new ConfigException($"open() \"{path}\" failed (2: No such file or directory)", null, 0);
        }

        string text;
        try
        {
            text = _fs.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"open() \"{path}\" failed ({ErrnoText(e)})", null, 0);
        }

        _dump.Add(path, text);
        var reader = new Reader(text, path);
        var list = new List<Directive>();
        ParseBlock(reader, list, BlockKind.File);
        return list;
    }

    /// <summary>Parses the -g argument: directives without blocks, each terminated by ";".</summary>
    public List<Directive> ParseParam(string text)
    {
        var reader = new Reader(text, CommandLine);
        var list = new List<Directive>();
        ParseBlock(reader, list, BlockKind.Param);
        return list;
    }

    /// <summary>Parses text as if it were a file with the given name (the embedded default configuration).</summary>
    public List<Directive> ParseText(string text, string name)
    {
        _dump.Add(name, text);
        var reader = new Reader(text, name);
        var list = new List<Directive>();
        ParseBlock(reader, list, BlockKind.File);
        return list;
    }

    private enum BlockKind { File, Block, Param }

    private enum Terminator { Semicolon, BlockStart, BlockDone, FileDone }

    private void ParseBlock(Reader r, List<Directive> into, BlockKind kind)
    {
        var words = new List<ConfigArg>();
        while (true)
        {
            words.Clear();
            var term = ReadToken(r, words, kind == BlockKind.Param);
            switch (term)
            {
                case Terminator.BlockDone:
                    if (kind != BlockKind.Block)
                    {
                        throw r.Error("unexpected \"}\"");
                    }

                    return;
                case Terminator.FileDone:
                    if (kind == BlockKind.Block)
                    {
                        throw r.Error("unexpected end of file, expecting \"}\"");
                    }

                    return;
                case Terminator.BlockStart when kind == BlockKind.Param:
                    throw r.Error("block directives are not supported in -g option");
            }

            var name = words[0].Value;
            var args = words.Count == 1 ? Array.Empty<ConfigArg>() : words.Skip(1).ToArray();
            var line = r.File == CommandLine ? 0 : r.Line;

            if (name == "include" && term == Terminator.Semicolon && kind != BlockKind.Param)
            {
                if (args.Length != 1)
                {
                    throw new ConfigException("invalid number of arguments in \"include\" directive", r.File, line);
                }

                Include(args[0].Value, r.File, line, into);
                continue;
            }

            if (term == Terminator.BlockStart)
            {
                var children = new List<Directive>();
                ParseBlock(r, children, BlockKind.Block);
                into.Add(new Directive(name, args, children, r.File, line));
            }
            else
            {
                into.Add(new Directive(name, args, null, r.File, line));
            }
        }
    }

    private void Include(string pattern, string file, int line, List<Directive> into)
    {
        var full = pattern.StartsWith('/') ? pattern : _confPrefix + pattern;
        if (++_includeDepth > 64)
        {
            throw new ConfigException($"include depth exceeded for \"{full}\" (an include loop?)", file, line);
        }

        try
        {
            if (!GlobPattern.HasWildcards(full))
            {
                if (!_fs.FileExists(full))
                {
                    throw new ConfigException($"open() \"{full}\" failed (2: No such file or directory)", file, line);
                }

                into.AddRange(ParseIncluded(full, file, line));
                return;
            }

            foreach (var path in _fs.Glob(full))
            {
                into.AddRange(ParseIncluded(path, file, line));
            }
        }
        finally
        {
            _includeDepth--;
        }
    }

    private List<Directive> ParseIncluded(string path, string file, int line)
    {
        string text;
        try
        {
            text = _fs.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"open() \"{path}\" failed ({ErrnoText(e)})", file, line);
        }

        _dump.Add(path, text);
        var reader = new Reader(text, path);
        var list = new List<Directive>();
        ParseBlock(reader, list, BlockKind.File);
        return list;
    }

    private static string ErrnoText(Exception e) => e switch
    {
        UnauthorizedAccessException => "13: Permission denied",
        FileNotFoundException or DirectoryNotFoundException => "2: No such file or directory",
        _ => "5: " + e.Message,
    };

    /// <summary>ngx_conf_read_token: reads the words of one directive and what ended it.</summary>
    private static Terminator ReadToken(Reader r, List<ConfigArg> words, bool param)
    {
        var needSpace = false;
        var lastSpace = true;
        var sharpComment = false;
        var variable = false;
        var quoted = false;
        var sQuoted = false;
        var dQuoted = false;
        var start = r.Pos;
        var wordQuoted = false;

        while (true)
        {
            if (r.AtEnd)
            {
                if (words.Count > 0 || !lastSpace)
                {
                    if (param)
                    {
                        throw r.Error("unexpected end of parameter, expecting \";\"");
                    }

                    throw r.Error("unexpected end of file, expecting \";\" or \"}\"");
                }

                return Terminator.FileDone;
            }

            var ch = r.Next();

            if (ch == '\n')
            {
                r.Line++;
                sharpComment = false;
            }

            if (sharpComment)
            {
                continue;
            }

            if (quoted)
            {
                quoted = false;
                continue;
            }

            if (needSpace)
            {
                if (ch is ' ' or '\t' or '\r' or '\n')
                {
                    lastSpace = true;
                    needSpace = false;
                    continue;
                }

                if (ch == ';')
                {
                    return Terminator.Semicolon;
                }

                if (ch == '{')
                {
                    return Terminator.BlockStart;
                }

                if (ch == ')')
                {
                    lastSpace = true;
                    needSpace = false;
                }
                else
                {
                    throw r.Error($"unexpected \"{ch}\"");
                }
            }

            if (lastSpace)
            {
                start = r.Pos - 1;
                if (ch is ' ' or '\t' or '\r' or '\n')
                {
                    continue;
                }

                if (words.Count == 0)
                {
                            }

                wordQuoted = false;
                switch (ch)
                {
                    case ';':
                    case '{':
                        if (words.Count == 0)
                        {
                            throw r.Error($"unexpected \"{ch}\"");
                        }

                        return ch == '{' ? Terminator.BlockStart : Terminator.Semicolon;
                    case '}':
                        if (words.Count != 0)
                        {
                            throw r.Error("unexpected \"}\"");
                        }

                        return Terminator.BlockDone;
                    case '#':
                        sharpComment = true;
                        continue;
                    case '\\':
                        quoted = true;
                        lastSpace = false;
                        continue;
                    case '"':
                        start++;
                        dQuoted = true;
                        wordQuoted = true;
                        lastSpace = false;
                        continue;
                    case '\'':
                        start++;
                        sQuoted = true;
                        wordQuoted = true;
                        lastSpace = false;
                        continue;
                    case '$':
                        variable = true;
                        lastSpace = false;
                        continue;
                    default:
                        lastSpace = false;
                        break;
                }
            }
            else
            {
                if (ch == '{' && variable)
                {
                    continue;
                }

                variable = false;

                if (ch == '\\')
                {
                    quoted = true;
                    continue;
                }

                if (ch == '$')
                {
                    variable = true;
                    continue;
                }

                var found = false;
                if (dQuoted)
                {
                    if (ch == '"')
                    {
                        dQuoted = false;
                        needSpace = true;
                        found = true;
                    }
                }
                else if (sQuoted)
                {
                    if (ch == '\'')
                    {
                        sQuoted = false;
                        needSpace = true;
                        found = true;
                    }
                }
                else if (ch is ' ' or '\t' or '\r' or '\n' or ';' or '{')
                {
                    lastSpace = true;
                    found = true;
                }

                if (found)
                {
                    words.Add(new ConfigArg(Unescape(r.Text, start, r.Pos - 1), wordQuoted));
                    if (ch == ';')
                    {
                        return Terminator.Semicolon;
                    }

                    if (ch == '{')
                    {
                        return Terminator.BlockStart;
                    }
                }
            }
        }
    }

    private static string Unescape(string text, int start, int end)
    {
        var span = text.AsSpan(start, end - start);
        if (span.IndexOf('\\') < 0)
        {
            return span.ToString();
        }

        var sb = new StringBuilder(span.Length);
        for (var i = 0; i < span.Length; i++)
        {
            var c = span[i];
            if (c == '\\' && i + 1 < span.Length)
            {
                switch (span[i + 1])
                {
                    case '"':
                    case '\'':
                    case '\\':
                        sb.Append(span[i + 1]);
                        i++;
                        continue;
                    case 't':
                        sb.Append('\t');
                        i++;
                        continue;
                    case 'r':
                        sb.Append('\r');
                        i++;
                        continue;
                    case 'n':
                        sb.Append('\n');
                        i++;
                        continue;
                }
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    private sealed class Reader(string text, string file)
    {
        public string Text { get; } = text;
        public string File { get; } = file;
        public int Pos { get; private set; }
        public int Line { get; set; } = 1;
        public bool AtEnd => Pos >= Text.Length;

        public char Next() => Text[Pos++];

        public ConfigException Error(string message) =>
            new(message, File, File == CommandLine ? 0 : Line);
    }
}
