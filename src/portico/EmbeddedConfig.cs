namespace Portico.Cli;

/// <summary>The configuration Portico runs when no -c is given and the default file does not exist.</summary>
public static class EmbeddedConfig
{
    public static string Text => $$"""
        # Portico's embedded default configuration: a welcome page on 127.0.0.1:8080.
        # Write your own to {{Program.DefaultPrefix}}{{Program.DefaultConf}} or pass -c FILE.
        error_log stderr notice;
        pid {{Path.Combine(Path.GetTempPath(), "portico.pid")}};

        events {
            worker_connections 1024;
        }

        http {
            # Access log lines go to standard output (the default logs/access.log needs a logs/ directory).
            access_log /dev/stdout;

            server {
                listen 127.0.0.1:8080 default_server;
                server_name localhost;
                default_type text/html;

                location / {
                    return 200 "<!DOCTYPE html>\n<html><head><title>Welcome to Portico</title></head>\n<body><h1>Welcome to Portico</h1>\n<p>Portico is running with its embedded default configuration.\nPoint it at your nginx configuration with <code>-c</code>.</p></body></html>\n";
                }
            }
        }

        """;
}
