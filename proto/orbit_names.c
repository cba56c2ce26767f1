/* orbit_names: the ledger vocabulary's naming rules (see orbit_names.h). */
#include "orbit_names.h"

static bool name_ok(const char *s, size_t max, bool id)
{
    if (!s)
        return false;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-' || (id && (c == ':' || c == '/'));
        if (!ok || n >= max)
            return false;
    }
    return n > 0;
}

bool orbit_name_plain_ok(const char *s)
{
    return name_ok(s, ORBIT_NAME_LEN_MAX, false);
}

bool orbit_name_id_ok(const char *s)
{
    return name_ok(s, ORBIT_NAME_LEN_MAX, true);
}

bool orbit_name_client_ok(const char *s)
{
    return name_ok(s, ORBIT_CLIENT_ID_MAX, true);
}

bool orbit_text_ok(const char *s, size_t max)
{
    if (!s || !*s)
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (n >= max || *p <= 0x20 || *p >= 0x7f)
            return false;
    return true;
}
