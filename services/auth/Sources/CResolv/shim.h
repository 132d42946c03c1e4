// glibc's resolver, for TXT lookups: part of libc6-dev, so every Debian build machine has it.
#include <resolv.h>
#include <arpa/nameser.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

/// The TXT records of `name`, each one's strings joined, written to `out` one after another,
/// each followed by a 0 byte. `server` (an IPv4 address, with `port`) replaces the system's
/// resolvers when not NULL. Returns the bytes written; -1 when the name has no TXT record
/// (NXDOMAIN or no data), -2 when no server answered, -3 when the answer is malformed or
/// larger than `out`.
static inline int rampart_txt_lookup(const char *name, const char *server, int port, int timeout_seconds,
                                     unsigned char *out, int out_length) {
    struct __res_state state;
    memset(&state, 0, sizeof state);
    if (res_ninit(&state) != 0) return -2;
    if (server != NULL) {
        struct sockaddr_in address;
        memset(&address, 0, sizeof address);
        address.sin_family = AF_INET;
        address.sin_port = htons((unsigned short)port);
        if (inet_pton(AF_INET, server, &address.sin_addr) != 1) { res_nclose(&state); return -2; }
        state.nscount = 1;
        state.nsaddr_list[0] = address;
    }
    state.retrans = timeout_seconds;
    state.retry = 2;
    unsigned char answer[65536];
    int length = res_nquery(&state, name, ns_c_in, ns_t_txt, answer, sizeof answer);
    int failure = state.res_h_errno;
    res_nclose(&state);
    if (length < 0) return (failure == HOST_NOT_FOUND || failure == NO_DATA) ? -1 : -2;
    ns_msg message;
    if (ns_initparse(answer, length, &message) != 0) return -3;
    int written = 0;
    int count = ns_msg_count(message, ns_s_an);
    for (int index = 0; index < count; index++) {
        ns_rr record;
        if (ns_parserr(&message, ns_s_an, index, &record) != 0) return -3;
        if (ns_rr_type(record) != ns_t_txt) continue;
        const unsigned char *data = ns_rr_rdata(record);
        int remaining = ns_rr_rdlen(record);
        while (remaining > 0) {
            int piece = data[0];
            if (piece + 1 > remaining || written + piece + 1 > out_length) return -3;
            memcpy(out + written, data + 1, piece);
            written += piece;
            data += piece + 1;
            remaining -= piece + 1;
        }
        out[written++] = 0;
    }
    return written;
}
