using System.Collections;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace Portico.Tests.Pipeline;

/// <summary>
/// Checks that an object made ready for another use holds nothing of its last one: every instance field
/// (of the class and its bases) is first set to a value no new object has, then the reused object is
/// compared field by field with a new one. A field added later and forgotten by the reset fails here.
/// </summary>
internal static class ReuseAssert
{
    private const BindingFlags Fields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;

    /// <summary>Sets every field (except <paramref name="keep"/>) to a used-looking value.</summary>
    public static void Dirty(object o, params string[] keep)
    {
        foreach (var f in AllFields(o.GetType()))
        {
            if (Skip(f, keep))
            {
                continue;
            }

            f.SetValue(o, UsedValue(f.FieldType, f.GetValue(o)));
        }
    }

    /// <summary>The reused object equals the new one in every field but <paramref name="except"/>.</summary>
    public static void LikeNew(object reused, object fresh, params string[] except)
    {
        Assert.Same(reused.GetType(), fresh.GetType());
        var checkedFields = 0;
        foreach (var f in AllFields(reused.GetType()))
        {
            if (Skip(f, except))
            {
                continue;
            }

            checkedFields++;
            var a = f.GetValue(reused);
            var b = f.GetValue(fresh);
            Assert.True(SameState(a, b), $"{reused.GetType().Name}.{f.Name} keeps {Show(a)} where a new object has {Show(b)}");
        }

        Assert.True(checkedFields > 0);
    }

    private static IEnumerable<FieldInfo> AllFields(Type t)
    {
        for (var type = t; type is not null && type != typeof(object) && type != typeof(MarshalByRefObject); type = type.BaseType)
        {
            // System.IO.Stream's own bookkeeping (its async gate) is not ours to reset.
            if (type == typeof(Stream))
            {
                break;
            }

            foreach (var f in type.GetFields(Fields))
            {
                yield return f;
            }
        }
    }

    private static bool Skip(FieldInfo f, string[] names) =>
        names.Any(n => f.Name == n || f.Name == $"<{n}>k__BackingField");

    private static object? UsedValue(Type t, object? current)
    {
        if (t == typeof(string))
        {
            return "used";
        }

        if (t == typeof(bool))
        {
            return current is true ? false : true;
        }

        if (t.IsEnum)
        {
            var values = Enum.GetValues(t);
            foreach (var v in values)
            {
                if (!Equals(v, current))
                {
                    return v;
                }
            }

            return current;
        }

        if (t.IsPrimitive)
        {
            return Convert.ChangeType(current is IConvertible c && c.ToInt64(null) == 7 ? 9 : 7, t);
        }

        if (t == typeof(DateTimeOffset))
        {
            return DateTimeOffset.UnixEpoch;
        }

        if (t.IsValueType)
        {
            return current;
        }

        if (t.IsArray)
        {
            var a = Array.CreateInstance(t.GetElementType()!, 3);
            if (t.GetElementType() == typeof(string) || t.GetElementType() == typeof(object))
            {
                a.SetValue("used", 1);
            }

            return a;
        }

        if (current is IList list && !list.IsReadOnly && !list.IsFixedSize)
        {
            // A collection the object keeps: fill it (its reset must empty it).
            var element = list.GetType().IsGenericType ? list.GetType().GetGenericArguments()[0] : typeof(object);
            list.Add(element.IsValueType ? Activator.CreateInstance(element) : null);
            return list;
        }

        if (current is IDictionary dict && !dict.IsReadOnly)
        {
            return current;
        }

        if (t.IsAbstract || t.IsInterface || t.ContainsGenericParameters)
        {
            return current;
        }

        return RuntimeHelpers.GetUninitializedObject(t);
    }

    private static bool SameState(object? a, object? b)
    {
        if (ReferenceEquals(a, b) || Equals(a, b))
        {
            return true;
        }

        // A kept collection or array counts as new when it is empty (or all cleared).
        if (a is Array arr && (b is null || b is Array))
        {
            return Cleared(arr) && (b is null || Cleared((Array)b));
        }

        if (a is ICollection c && (b is null || b is ICollection))
        {
            return c.Count == 0 && (b is null || ((ICollection)b).Count == 0);
        }

        return false;
    }

    private static bool Cleared(Array a)
    {
        foreach (var v in a)
        {
            if (v is not null && !(v.GetType().IsValueType && v.Equals(Activator.CreateInstance(v.GetType()))))
            {
                return false;
            }
        }

        return true;
    }

    private static string Show(object? v) => v is null ? "null" : v is string s ? $"\"{s}\"" : v.ToString() ?? v.GetType().Name;
}
