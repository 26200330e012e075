using System.Globalization;
using Portico.Hosting;
using Portico.Pipeline;

namespace Portico.Cli;

/// <summary>nginx's command line: -?hvVtTq, -s signal, -p prefix, -e file, -c file, -g directives.</summary>
public static class Program
{
    public const string DefaultPrefix = "/usr/local/portico/";
    public const string DefaultConf = "conf/portico.conf";

    public static async Task<int> Main(string[] args)
    {
        Signals.ResetInheritedIgnores();
        HotPath.EnableInlineSocketCompletions();
        var options = CommandLine.Parse(args, Console.Error);
        if (options is null)
        {
            return 1;
        }

        if (options.ShowHelp || options.ShowVersion || options.ShowVersionFull)
        {
            Console.Error.WriteLine($"{Product.Name} version: {Product.NameAndVersion}");
            if (options.ShowVersionFull)
            {
                Console.Error.WriteLine($"built with .NET {Environment.Version} ({System.Runtime.InteropServices.RuntimeInformation.RuntimeIdentifier})");
                Console.Error.WriteLine("configure arguments: --prefix=" + DefaultPrefix + " --conf-path=" + DefaultConf + " (all modules built in; see docs/directives)");
            }

            if (options.ShowHelp)
            {
                Console.Error.Write(CommandLine.Usage);
            }

            return 0;
        }

        if (!options.Test && !options.Dump && options.Signal is null)
        {
            // Before anything is opened: on one CPU this may start the process again (docs/operations.md).
            HotPath.RestartForSingleCpuTiering();
        }

        var hostOptions = new HostOptions
        {
            Prefix = options.Prefix ?? DefaultPrefix,
            ConfFile = options.ConfFile ?? DefaultConf,
            GlobalDirectives = options.GlobalDirectives,
            StartupErrorLog = options.ErrorLog,
            // The embedded configuration applies only when no -c was given and the default file is absent.
            FallbackConfig = options.ConfFile is null ? EmbeddedConfig.Text : null,
        };

        await using var host = new PorticoHost(hostOptions);
        if (options.Test || options.Dump)
        {
            return TestConfiguration(host, options);
        }

        if (options.Signal is not null)
        {
            return SendSignal(host, options.Signal);
        }

        // Handlers first: the pid file tells tools they may signal, and it is written while starting.
        using (Signals.Install(host))
        {
            if (!await host.StartAsync().ConfigureAwait(false))
            {
                return 1;
            }

            await host.Stopped.ConfigureAwait(false);
        }

        return 0;
    }

    private static int TestConfiguration(PorticoHost host, CommandLineOptions options)
    {
        var snapshot = host.LoadAndCompile(out var load, out var errors);
        var file = load.UsedFallback ? "<embedded default configuration>" : load.Paths.ConfFile;
        foreach (var w in load.Warnings)
        {
            Console.Error.WriteLine($"{Product.Name}: {w}");
        }

        if (snapshot is null)
        {
            foreach (var e in errors)
            {
                Console.Error.WriteLine($"{Product.Name}: {e}");
            }

            Console.Error.WriteLine($"{Product.Name}: configuration file {file} test failed");
            return 1;
        }

        if (!options.Quiet)
        {
            Console.Error.WriteLine($"{Product.Name}: the configuration file {file} syntax is ok");
            Console.Error.WriteLine($"{Product.Name}: configuration file {file} test is successful");
        }

        if (options.Dump)
        {
            Console.Out.Write(load.Dump.Render());
            Console.Out.Flush();
        }

        return 0;
    }

    private static int SendSignal(PorticoHost host, string name)
    {
        var signal = name switch
        {
            "stop" => Signals.SigTerm,
            "quit" => Signals.SigQuit,
            "reopen" => Signals.SigUsr1,
            "reload" => Signals.SigHup,
            _ => 0,
        };

        var load = host.Load();
        if (!load.Success)
        {
            foreach (var e in load.Errors)
            {
                Console.Error.WriteLine($"{Product.Name}: {e}");
            }

            return 1;
        }

        var pidFile = load.Model!.Main.Get<Portico.Config.Model.MainSettings>().Pid ?? load.Paths.FromPrefix("logs/portico.pid");
        string text;
        try
        {
            text = File.ReadAllText(pidFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"{Product.Name}: [error] open() \"{pidFile}\" failed ({Portico.Compilation.ErrorLogFactory.Errno(e)})");
            return 1;
        }

        var trimmed = text.Trim();
        if (!int.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0)
        {
            Console.Error.WriteLine($"{Product.Name}: [error] invalid PID number \"{trimmed}\" in \"{pidFile}\"");
            return 1;
        }

        if (!Signals.Send(pid, signal, out var errno))
        {
            var reason = errno == 3 ? "3: No such process" : errno == 1 ? "1: Operation not permitted" : errno.ToString(CultureInfo.InvariantCulture);
            Console.Error.WriteLine($"{Product.Name}: [alert] kill({pid}, {signal}) failed ({reason})");
            return 1;
        }

        return 0;
    }
}

public sealed class CommandLineOptions
{
    public bool ShowHelp { get; set; }
    public bool ShowVersion { get; set; }
    public bool ShowVersionFull { get; set; }
    public bool Test { get; set; }
    public bool Dump { get; set; }
    public bool Quiet { get; set; }
    public string? Signal { get; set; }
    public string? Prefix { get; set; }
    public string? ErrorLog { get; set; }
    public string? ConfFile { get; set; }
    public string? GlobalDirectives { get; set; }
}

public static class CommandLine
{
    public const string Usage =
        "Usage: portico [-?hvVtTq] [-s signal] [-p prefix]\n" +
        "               [-e filename] [-c filename] [-g directives]\n\n" +
        "Options:\n" +
        "  -?,-h         : this help\n" +
        "  -v            : show version and exit\n" +
        "  -V            : show version and configure options then exit\n" +
        "  -t            : test configuration and exit\n" +
        "  -T            : test configuration, dump it and exit\n" +
        "  -q            : suppress non-error messages during configuration testing\n" +
        "  -s signal     : send signal to the running instance: stop, quit, reopen, reload\n" +
        "  -p prefix     : set prefix path (default: " + Program.DefaultPrefix + ")\n" +
        "  -e filename   : set error log file (default: stderr and logs/error.log)\n" +
        "  -c filename   : set configuration file (default: " + Program.DefaultConf + ")\n" +
        "  -g directives : set global directives out of configuration file\n";

    /// <summary>ngx_get_options: flags may be combined ("-tq"); values attached ("-cfile") or in the next argument.</summary>
    public static CommandLineOptions? Parse(string[] args, TextWriter error)
    {
        var o = new CommandLineOptions();
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            if (arg.Length < 2 || arg[0] != '-')
            {
                error.WriteLine($"portico: invalid option: \"{arg}\"");
                return null;
            }

            for (var p = 1; p < arg.Length; p++)
            {
                var ch = arg[p];
                switch (ch)
                {
                    case '?':
                    case 'h':
                        o.ShowHelp = true;
                        continue;
                    case 'v':
                        o.ShowVersion = true;
                        continue;
                    case 'V':
                        o.ShowVersionFull = true;
                        continue;
                    case 't':
                        o.Test = true;
                        continue;
                    case 'T':
                        o.Test = true;
                        o.Dump = true;
                        continue;
                    case 'q':
                        o.Quiet = true;
                        continue;
                    case 's':
                    case 'p':
                    case 'e':
                    case 'c':
                    case 'g':
                        string value;
                        if (p + 1 < arg.Length)
                        {
                            value = arg[(p + 1)..];
                        }
                        else if (i + 1 < args.Length)
                        {
                            value = args[++i];
                        }
                        else
                        {
                            error.WriteLine(ch switch
                            {
                                's' => "portico: option \"-s\" requires parameter",
                                'p' => "portico: option \"-p\" requires directory name",
                                'e' => "portico: option \"-e\" requires file name",
                                'c' => "portico: option \"-c\" requires file name",
                                _ => "portico: option \"-g\" requires parameter",
                            });
                            return null;
                        }

                        switch (ch)
                        {
                            case 's':
                                if (value is not ("stop" or "quit" or "reopen" or "reload"))
                                {
                                    error.WriteLine($"portico: invalid option: \"-s {value}\"");
                                    return null;
                                }

                                o.Signal = value;
                                break;
                            case 'p':
                                o.Prefix = Path.GetFullPath(value).TrimEnd('/') + "/";
                                break;
                            case 'e':
                                o.ErrorLog = value == "stderr" ? "stderr" : Path.GetFullPath(value);
                                break;
                            case 'c':
                                o.ConfFile = value;
                                break;
                            default:
                                o.GlobalDirectives = value;
                                break;
                        }

                        p = arg.Length;
                        continue;
                    default:
                        error.WriteLine($"portico: invalid option: \"{arg[p..]}\"");
                        return null;
                }
            }
        }

        return o;
    }
}
