/* Hand-written baseline for the multi-token ring oscillator (bench/ring.py).
 *
 * Same workload as the XML application: N nodes, each starts with one token
 * (pending = 1); a node with pending > 0 sends one token to node (i+1) % N
 * (pending--), the receiver does counter++ and, while counter < M, pending++.
 * Ready nodes are kept in a FIFO (a node is queued iff pending > 0).
 * Every node sends and receives exactly M messages: delivered == N*M.
 *
 * usage: ring_loop N M
 * prints: "delivered <count>" and "seconds <simulation loop time>", and
 * checks every final state (counter == M, pending == 0).
 * Build: gcc -O2 -o ring_loop ring_loop.c
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s N M\n", argv[0]);
        return 2;
    }
    uint32_t n = (uint32_t)strtoul(argv[1], NULL, 10);
    uint32_t m = (uint32_t)strtoul(argv[2], NULL, 10);
    if (n == 0) {
        fprintf(stderr, "N must be >= 1\n");
        return 2;
    }
    uint32_t *counter = malloc(sizeof(uint32_t) * n);
    uint32_t *pending = malloc(sizeof(uint32_t) * n);
    uint32_t *fifo = malloc(sizeof(uint32_t) * n); /* each node queued at most once */
    if (!counter || !pending || !fifo) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }

    double t0 = now();
    /* __init__: counter = 0, pending = 1 for every node; all are ready. */
    for (uint32_t i = 0; i < n; i++) {
        counter[i] = 0;
        pending[i] = 1;
        fifo[i] = i;
    }
    uint32_t head = 0, count = n;
    uint64_t delivered = 0;
    while (count) {
        uint32_t i = fifo[head];
        head = head + 1 == n ? 0 : head + 1;
        count--;
        /* OnSend */
        pending[i]--;
        uint32_t j = i + 1 == n ? 0 : i + 1;
        /* delivery + OnReceive */
        delivered++;
        counter[j]++;
        if (counter[j] < m) {
            if (pending[j]++ == 0 && j != i) {
                uint32_t t = head + count;
                fifo[t >= n ? t - n : t] = j;
                count++;
            }
        }
        /* re-queue the sender if it still holds tokens (j == i: N == 1) */
        if (pending[i] > 0 && (j != i || pending[i] == 1)) {
            uint32_t t = head + count;
            fifo[t >= n ? t - n : t] = i;
            count++;
        }
    }
    double t1 = now();

    uint64_t bad = 0;
    for (uint32_t i = 0; i < n; i++)
        if (counter[i] != m || pending[i] != 0)
            bad++;
    printf("delivered %llu\n", (unsigned long long)delivered);
    printf("seconds %.9f\n", t1 - t0);
    if (bad) {
        printf("bad_states %llu\n", (unsigned long long)bad);
        return 1;
    }
    free(counter);
    free(pending);
    free(fifo);
    return 0;
}
