namespace Portico.Config.Model;

/// <summary>
/// A module's settings for one context level. <see cref="MergeFrom"/> is the module's explicit inheritance
/// rule (nginx's merge_loc_conf): unset values take the parent's, and the default when the parent has none.
/// After binding and merging the object is never changed again; the runtime reads it from the snapshot.
/// </summary>
public abstract class Settings<T> where T : Settings<T>, new()
{
    public abstract void MergeFrom(T parent);
}

/// <summary>Where a settings type lives and how far it is inherited.</summary>
public enum SettingsScope
{
    /// <summary>One instance per http block (nginx's main conf of an http module).</summary>
    HttpMain,

    /// <summary>http and server levels, merged http → server (srv conf).</summary>
    Server,

    /// <summary>http, server, location, nested location and if levels, merged downwards (loc conf).</summary>
    Location,
}

/// <summary>The settings objects of every module at one level of the configuration tree.</summary>
public sealed class SettingsLevel
{
    private readonly Dictionary<Type, object> _items = [];

    public SettingsLevel(SettingsLevel? parent)
    {
        Parent = parent;
    }

    public SettingsLevel? Parent { get; }

    /// <summary>The settings of type T at this level, created empty (all unset) on first use.</summary>
    public T Get<T>() where T : class, new()
    {
        if (!_items.TryGetValue(typeof(T), out var value))
        {
            value = new T();
            _items.Add(typeof(T), value);
        }

        return (T)value;
    }

    public T? Find<T>() where T : class =>
        _items.TryGetValue(typeof(T), out var value) ? (T)value : null;

    internal object GetOrCreate(Type type, Func<object> factory)
    {
        if (!_items.TryGetValue(type, out var value))
        {
            value = factory();
            _items.Add(type, value);
        }

        return value;
    }
}

/// <summary>Creates and merges one settings type; the registry holds one per registered type.</summary>
public interface ISettingsDescriptor
{
    Type Type { get; }
    SettingsScope Scope { get; }
    void Merge(SettingsLevel child, SettingsLevel parent);
    void Touch(SettingsLevel level);
}

public sealed class SettingsDescriptor<T> : ISettingsDescriptor where T : Settings<T>, new()
{
    public SettingsDescriptor(SettingsScope scope)
    {
        Scope = scope;
    }

    public Type Type => typeof(T);
    public SettingsScope Scope { get; }

    public void Merge(SettingsLevel child, SettingsLevel parent) => child.Get<T>().MergeFrom(parent.Get<T>());

    public void Touch(SettingsLevel level) => level.Get<T>();
}
