using BenchmarkDotNet.Running;

namespace Portico.Micro;

public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
