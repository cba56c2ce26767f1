/* orbit_selector: node selectors, validated and matched. */
#include "orbit_selector.h"

#include <string.h>

#include "orbit_node.h"

static bool sel_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '/' || c == ':';
}

/* Length of the run of selector characters at s. */
static size_t run(const char *s)
{
    size_t n = 0;
    while (sel_char(s[n]))
        n++;
    return n;
}

bool orbit_selector_valid(const char *sel, const char **reason)
{
    const char *why = NULL;
    if (!sel) {
        why = "no selector";
    } else if (strlen(sel) > ORBIT_SELECTOR_MAX) {
        why = "selector too long";
    } else {
        const char *p = sel, *prev = NULL;
        size_t prev_len = 0;
        while (*p && !why) {
            size_t k = run(p);
            if (!k || k > ORBIT_LABEL_KEY_MAX || p[k] != '=') {
                why = k ? (k > ORBIT_LABEL_KEY_MAX ? "selector key too long" : "selector: want k=v")
                        : "selector: empty or bad key";
                break;
            }
            size_t v = run(p + k + 1);
            if (!v || v > ORBIT_LABEL_VALUE_MAX || (p[k + 1 + v] && p[k + 1 + v] != ',')) {
                why = !v                          ? "selector: empty or bad value"
                      : v > ORBIT_LABEL_VALUE_MAX ? "selector value too long"
                                                  : "selector: bad character";
                break;
            }
            if (prev) {
                size_t m = prev_len < k ? prev_len : k;
                int c = memcmp(prev, p, m);
                if (c > 0 || (c == 0 && prev_len >= k))
                    why = "selector keys must be sorted and unique";
            }
            prev = p;
            prev_len = k;
            p += k + 1 + v;
            if (*p == ',' && !*++p)
                why = "selector: trailing comma";
        }
    }
    if (why && reason)
        *reason = why;
    return !why;
}

bool orbit_selector_matches(const char *sel, const char *labels)
{
    if (!sel)
        return true;
    const char *p = sel;
    while (*p) {
        size_t n = strcspn(p, ","); /* "k=v" */
        bool found = false;
        for (const char *l = labels ? labels : ""; *l && !found;) {
            size_t m = strcspn(l, "\n");
            found = m == n && !memcmp(l, p, n);
            l += m + (l[m] == '\n');
        }
        if (!found)
            return false;
        p += n + (p[n] == ',');
    }
    return true;
}
