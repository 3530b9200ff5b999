/* This CPU's measured peak: multiply-adds per second of one instruction kind, kept busy
 * on registers (no memory traffic), on every thread asked for. The physical limit of an
 * embedding engine is its FLOPs per token over this.
 *
 *   fp32  AVX-512 FMA (vfmadd231ps): 16 multiply-adds = 32 FLOPs an instruction
 *   int8  AVX-512 VNNI (vpdpbusd): 64 8-bit multiply-adds = 128 ops an instruction
 *         (what llama.cpp's Q8_0 dot products reduce to on such a CPU)
 *   bf16  AVX-512 BF16 (vdpbf16ps): 32 multiply-adds = 64 FLOPs an instruction
 *
 * Built by bench/engine_throughput.py with the kinds this CPU has:
 *   cc -O3 -mavx512f [-mavx512vnni] [-mavx512bf16] -DHAVE_... peak_probe.c -lpthread
 *   ./peak_probe KIND THREADS SECONDS   ->   prints giga-ops per second, all threads
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHAINS 12 /* independent accumulators: more than latency x ports */
#define STEPS 4096

static const char *kind;
static double seconds;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

struct job {
    double ops;
    float sink;
};

static void *run(void *arg) {
    struct job *job = arg;
    double ops = 0, end = now() + seconds;
    __m512 acc[CHAINS];
    __m512i iacc[CHAINS];
    for (int i = 0; i < CHAINS; i++) {
        acc[i] = _mm512_set1_ps(i * 1e-3f);
        iacc[i] = _mm512_set1_epi32(i);
    }
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-6f);
    const __m512i ia = _mm512_set1_epi8(3), ib = _mm512_set1_epi8(5);
    while (now() < end) {
        if (strcmp(kind, "fp32") == 0) {
            for (int s = 0; s < STEPS; s++)
#pragma GCC unroll 12
                for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
            ops += 32.0 * STEPS * CHAINS;
#ifdef HAVE_VNNI
        } else if (strcmp(kind, "int8") == 0) {
            for (int s = 0; s < STEPS; s++)
#pragma GCC unroll 12
                for (int i = 0; i < CHAINS; i++) iacc[i] = _mm512_dpbusd_epi32(iacc[i], ia, ib);
            ops += 128.0 * STEPS * CHAINS;
#endif
#ifdef HAVE_BF16
        } else if (strcmp(kind, "bf16") == 0) {
            const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3a80);
            for (int s = 0; s < STEPS; s++)
#pragma GCC unroll 12
                for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_dpbf16_ps(acc[i], x, y);
            ops += 64.0 * STEPS * CHAINS;
#endif
        } else {
            return NULL;
        }
    }
    float sink = 0;
    for (int i = 0; i < CHAINS; i++) sink += _mm512_reduce_add_ps(acc[i]) + (float)_mm512_reduce_add_epi32(iacc[i]);
    job->ops = ops;
    job->sink = sink;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s fp32|int8|bf16 THREADS SECONDS\n", argv[0]);
        return 2;
    }
    kind = argv[1];
    int threads = atoi(argv[2]);
    seconds = atof(argv[3]);
    pthread_t ids[256];
    struct job jobs[256] = {{0}};
    if (threads < 1 || threads > 256) return 2;
    double began = now();
    for (int t = 0; t < threads; t++) pthread_create(&ids[t], NULL, run, &jobs[t]);
    double ops = 0, sink = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(ids[t], NULL);
        ops += jobs[t].ops;
        sink += jobs[t].sink;
    }
    if (ops == 0) {
        fprintf(stderr, "%s: not built into this probe\n", kind);
        return 1;
    }
    printf("%.1f\n", ops / (now() - began) / 1e9 + 0 * sink);
    return 0;
}
