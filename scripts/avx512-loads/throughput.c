// Throughput of single 512-bit instructions, in cycles of the clock a chain of scalar adds
// measures: `vpdpbusd` from registers, with a broadcast from memory, with a full load;
// loads alone. What showed that the wide Q8_0 tile waited on loads (docs/benchmarks.md, "Q8_0's
// wide groups of 32 rows"). Run: gcc -O2 -march=icelake-server throughput.c -o /tmp/t && /tmp/t
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}

// Twelve independent accumulators (zmm4-zmm15), so no instruction waits on another's result;
// the variants that pair two products per step use six of them and zmm14-zmm19 as well.
#define ACC12 ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n"
#define ACC6 ".irp r,4,5,6,7,8,9\n"
#define LOW "xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15"
#define HIGH "xmm16","xmm17","xmm18","xmm19","xmm20","xmm21","xmm22","xmm23","xmm24","xmm25","xmm26","xmm27","xmm28","xmm29","xmm30","xmm31"

// Runs `body` (12 of the measured instructions; %1 is `mem`) N times and prints how many of them
// retire per cycle of the clock measured first. The clobbers after `mem` are the registers
// `body` writes. The register-only forms pass `big`, unused: GCC then keeps `big` in rbp and
// `buf` in r12 for every loop, the same instruction bytes as when each loop was written out
// (docs/benchmarks.md's figures came from those; r12 as a base register takes one byte more).
#define PER_CYCLE(label, body, mem, ...) do { \
    double t0 = now(); \
    __asm__ volatile("mov %0, %%rcx\n1:\n" body "dec %%rcx\n jnz 1b\n" \
                     :: "r"(N), "r"(mem) : "rcx", __VA_ARGS__); \
    double t = now() - t0; \
    printf(label " per cycle %.2f\n", N * 12.0 / t / 1e9 / ghz); \
  } while (0)

int main(){
  long N=100000000; double t0,t;
  static int big[1024] __attribute__((aligned(64)));
  static int buf[64] __attribute__((aligned(64)));
  // clock: dependent chain of add (latency 1) on GPR
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" ".rept 20\n add $1, %%rax\n .endr\n" "dec %%rcx\n jnz 1b\n" :: "r"(N) : "rcx","rax");
  t=now()-t0; double ghz = N*20.0/t/1e9; printf("clock ~ %.2f GHz\n", ghz);

  PER_CYCLE("dpbusd zmm", ACC12 " vpdpbusd %%zmm1, %%zmm2, %%zmm\\r\n .endr\n", big, LOW);
  PER_CYCLE("dpbusd ymm", ACC12 " vpdpbusd %%ymm1, %%ymm2, %%ymm\\r\n .endr\n", big, LOW);
  PER_CYCLE("mulps zmm", ACC12 " vmulps %%zmm1, %%zmm2, %%zmm\\r\n .endr\n", big, LOW);
  PER_CYCLE("dpbusd zmm bcast", ACC12 " vpdpbusd 4*\\r(%1)%{1to16%}, %%zmm2, %%zmm\\r\n .endr\n", buf, LOW);
  PER_CYCLE("cvt zmm", ACC12 " vcvtdq2ps %%zmm1, %%zmm\\r\n .endr\n", big, LOW);

  PER_CYCLE("vpbroadcastd+dpbusd zmm",
            ACC12 " vpbroadcastd 4*\\r(%1), %%zmm16\n vpdpbusd %%zmm16, %%zmm2, %%zmm\\r\n .endr\n",
            buf, LOW, "xmm16");
  PER_CYCLE("dpbusd ymm bcast", ACC12 " vpdpbusd 4*\\r(%1)%{1to8%}, %%ymm2, %%ymm\\r\n .endr\n", buf, LOW);
  PER_CYCLE("dpbusd zmm full mem", ACC12 " vpdpbusd 64*\\r(%1), %%zmm2, %%zmm\\r\n .endr\n", big, LOW);
  PER_CYCLE("paddd zmm bcast", ACC12 " vpaddd 4*\\r(%1)%{1to16%}, %%zmm2, %%zmm\\r\n .endr\n", buf, LOW);

  PER_CYCLE("1 bcast : 2 dpbusd zmm",
            ACC6 " vpbroadcastd 4*\\r(%1), %%zmm16\n vpdpbusd %%zmm16, %%zmm2, %%zmm\\r\n"
            " vpdpbusd %%zmm16, %%zmm3, %%zmm1\\r\n .endr\n",
            buf, LOW, HIGH);
  PER_CYCLE("half mem-bcast half reg zmm",
            ACC6 " vpdpbusd 4*\\r(%1)%{1to16%}, %%zmm2, %%zmm\\r\n vpdpbusd %%zmm20, %%zmm3, %%zmm1\\r\n .endr\n",
            buf, LOW, HIGH);
  PER_CYCLE("zmm loads", ACC12 " vmovdqu64 64*\\r(%1), %%zmm16\n .endr\n", big, "xmm16");
  PER_CYCLE("zmm bcast loads", ACC12 " vpbroadcastd 4*\\r(%1), %%zmm16\n .endr\n", big, "xmm16");
}
