// The baseline for `make bench`: NATS request/reply written directly against nats.c.
//   nats_reqrep responder <url> <subject>          echo every request until SIGTERM
//   nats_reqrep requester <url> <subject> <count>  sequential requests; prints rps and latency
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)sub; (void)closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply != NULL) {
        natsConnection_Publish(nc, reply, natsMsg_GetData(msg), natsMsg_GetDataLength(msg));
    }
    natsMsg_Destroy(msg);
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s responder|requester url subject [count]\n", argv[0]);
        return 2;
    }
    // Started from a Swift program, this process inherits a thread's signal mask with SIGTERM
    // blocked: unblock everything, or `terminate()` would never reach the responder.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    // As nats.c's documentation advises for a replier: send each reply at once. (The
    // requester needs no option: natsConnection_Request already flushes its request.)
    natsConnection *nc = NULL;
    natsOptions *opts = NULL;
    if (natsOptions_Create(&opts) != NATS_OK || natsOptions_SetURL(opts, argv[2]) != NATS_OK ||
        natsOptions_SetSendAsap(opts, true) != NATS_OK || natsConnection_Connect(&nc, opts) != NATS_OK) {
        fprintf(stderr, "connect failed: %s\n", nats_GetLastError(NULL));
        return 1;
    }
    natsOptions_Destroy(opts);
    if (strcmp(argv[1], "responder") == 0) {
        natsSubscription *sub = NULL;
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        if (natsConnection_Subscribe(&sub, nc, argv[3], on_request, NULL) != NATS_OK) return 1;
        natsConnection_Flush(nc);
        printf("ready\n");
        fflush(stdout);
        while (!stopping) usleep(50000);
        natsSubscription_Destroy(sub);
    } else {
        int count = argc > 4 ? atoi(argv[4]) : 20000;
        char payload[128];
        memset(payload, 'x', sizeof(payload));
        int64_t *latencies = calloc((size_t)count, sizeof(int64_t));
        for (int i = 0; i < 1000; i++) {  // warm-up
            natsMsg *reply = NULL;
            if (natsConnection_Request(&reply, nc, argv[3], payload, sizeof(payload), 5000) != NATS_OK) return 1;
            natsMsg_Destroy(reply);
        }
        int64_t start = now_ns();
        for (int i = 0; i < count; i++) {
            natsMsg *reply = NULL;
            int64_t t0 = now_ns();
            if (natsConnection_Request(&reply, nc, argv[3], payload, sizeof(payload), 5000) != NATS_OK) {
                fprintf(stderr, "request failed: %s\n", nats_GetLastError(NULL));
                return 1;
            }
            latencies[i] = now_ns() - t0;
            natsMsg_Destroy(reply);
        }
        double seconds = (double)(now_ns() - start) / 1e9;
        qsort(latencies, (size_t)count, sizeof(int64_t), compare);
        printf("rps=%.0f p50_us=%.1f p99_us=%.1f\n", count / seconds, latencies[count / 2] / 1000.0,
               latencies[(int)(count * 0.99)] / 1000.0);
        free(latencies);
    }
    natsConnection_Destroy(nc);
    nats_Close();
    return 0;
}
