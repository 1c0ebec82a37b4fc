// Throughput of single 512-bit instructions, in cycles of the clock a chain of scalar adds
// measures: `vpdpbusd` from registers, with a broadcast from memory, with a full load;
// loads alone. What showed that the wide Q8_0 tile waited on loads (README, "Q8_0's wide
// groups of 32 rows"). Run: gcc -O2 -march=icelake-server throughput.c -o /tmp/t && /tmp/t
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(){
  long N=100000000; double t0,t;
  // clock: dependent chain of add (latency 1) on GPR, 
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" ".rept 20\n add $1, %%rax\n .endr\n" "dec %%rcx\n jnz 1b\n" :: "r"(N) : "rcx","rax");
  t=now()-t0; double ghz = N*20.0/t/1e9; printf("clock ~ %.2f GHz\n", ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n vpxord %%zmm0,%%zmm0,%%zmm0\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpdpbusd %%zmm1, %%zmm2, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("dpbusd zmm per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpdpbusd %%ymm1, %%ymm2, %%ymm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("dpbusd ymm per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vmulps %%zmm1, %%zmm2, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("mulps zmm per cycle %.2f\n", N*12.0/t/1e9/ghz);
  static int big[1024] __attribute__((aligned(64)));
  static int buf[64] __attribute__((aligned(64)));
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpdpbusd 4*\\r(%1)%{1to16%}, %%zmm2, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(buf) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("dpbusd zmm bcast per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vcvtdq2ps %%zmm1, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("cvt zmm per cycle %.2f\n", N*12.0/t/1e9/ghz);

  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpbroadcastd 4*\\r(%1), %%zmm16\n vpdpbusd %%zmm16, %%zmm2, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(buf) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15","xmm16");
  t=now()-t0; printf("vpbroadcastd+dpbusd zmm per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpdpbusd 4*\\r(%1)%{1to8%}, %%ymm2, %%ymm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(buf) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("dpbusd ymm bcast per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpdpbusd 64*\\r(%1), %%zmm2, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(big) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("dpbusd zmm full mem per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpaddd 4*\\r(%1)%{1to16%}, %%zmm2, %%zmm\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(buf) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15");
  t=now()-t0; printf("paddd zmm bcast per cycle %.2f\n", N*12.0/t/1e9/ghz);

  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9\n vpbroadcastd 4*\\r(%1), %%zmm16\n vpdpbusd %%zmm16, %%zmm2, %%zmm\\r\n vpdpbusd %%zmm16, %%zmm3, %%zmm1\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(buf) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15","xmm16","xmm17","xmm18","xmm19","xmm20","xmm21","xmm22","xmm23","xmm24","xmm25","xmm26","xmm27","xmm28","xmm29","xmm30","xmm31");
  t=now()-t0; printf("1 bcast : 2 dpbusd zmm per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9\n vpdpbusd 4*\\r(%1)%{1to16%}, %%zmm2, %%zmm\\r\n vpdpbusd %%zmm20, %%zmm3, %%zmm1\\r\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(buf) : "rcx","xmm4","xmm5","xmm6","xmm7","xmm8","xmm9","xmm10","xmm11","xmm12","xmm13","xmm14","xmm15","xmm16","xmm17","xmm18","xmm19","xmm20","xmm21","xmm22","xmm23","xmm24","xmm25","xmm26","xmm27","xmm28","xmm29","xmm30","xmm31");
  t=now()-t0; printf("half mem-bcast half reg zmm per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vmovdqu64 64*\\r(%1), %%zmm16\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(big) : "rcx","xmm16");
  t=now()-t0; printf("zmm loads per cycle %.2f\n", N*12.0/t/1e9/ghz);
  t0=now();
  __asm__ volatile("mov %0, %%rcx\n1:\n" 
   ".irp r,4,5,6,7,8,9,10,11,12,13,14,15\n vpbroadcastd 4*\\r(%1), %%zmm16\n .endr\n"
   "dec %%rcx\n jnz 1b\n" :: "r"(N), "r"(big) : "rcx","xmm16");
  t=now()-t0; printf("zmm bcast loads per cycle %.2f\n", N*12.0/t/1e9/ghz);
}
