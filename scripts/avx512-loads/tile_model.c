// A C model of the wide Q8_0 tile's inner loop, data in L1: v0 is the form before (12 activation
// rows x 16 weight rows, one memory broadcast per product), v1 the current one (R1 rows x 32
// weight rows, one register broadcast for two products). docs/benchmarks.md, "Q8_0's wide
// groups of 32 rows". Run: gcc -O3 -march=icelake-server tile_model.c -o /tmp/k && /tmp/k
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
#include <stdint.h>
#include <string.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define NB 8
static int8_t wq[4][NB*32*16] __attribute__((aligned(64)));
static float ws[4][NB*16];
static int8_t xq[NB*12*32] __attribute__((aligned(64)));
static float xd[NB*12]; static int32_t offs[NB*12];
static float out[12*64];

__attribute__((noinline)) void v0(int g){ // current: 12 rows x 16 cols
  __m512 acc[12]; for(int r=0;r<12;r++) acc[r]=_mm512_loadu_ps(out+r*16);
  const int8_t*w=wq[g]; const float*s=ws[g];
  for(int b=0;b<NB;b++){
    __m512i is[12]; for(int r=0;r<12;r++) is[r]=_mm512_setzero_si512();
    for(int q=0;q<8;q++){ __m512i wv=_mm512_loadu_si512(w+b*512+q*64);
      for(int r=0;r<12;r++) is[r]=_mm512_dpbusd_epi32(is[r],wv,_mm512_set1_epi32(*(int32_t*)(xq+b*384+r*32+4*q))); }
    __m512 dw=_mm512_loadu_ps(s+b*16);
    for(int r=0;r<12;r++){ __m512i t=_mm512_sub_epi32(is[r],_mm512_set1_epi32(offs[b*12+r]));
      __m512 d=_mm512_mul_ps(dw,_mm512_set1_ps(xd[b*12+r]));
      acc[r]=_mm512_add_ps(acc[r],_mm512_mul_ps(_mm512_cvtepi32_ps(t),d)); }
  }
  for(int r=0;r<12;r++) _mm512_storeu_ps(out+r*16,acc[r]);
}
#define R1 4
__attribute__((noinline)) void v1(int g){ // R1 rows x 32 cols (two groups)
  __m512 acc[R1][2]; for(int r=0;r<R1;r++) for(int j=0;j<2;j++) acc[r][j]=_mm512_loadu_ps(out+r*32+j*16);
  const int8_t*w0=wq[g],*w1=wq[g+1]; const float*s0=ws[g],*s1=ws[g+1];
  for(int b=0;b<NB;b++){
    __m512i is[R1][2]; for(int r=0;r<R1;r++){ is[r][0]=_mm512_set1_epi32(-offs[b*12+r]); is[r][1]=is[r][0]; }
    for(int q=0;q<8;q++){ __m512i a=_mm512_loadu_si512(w0+b*512+q*64), c=_mm512_loadu_si512(w1+b*512+q*64);
      for(int r=0;r<R1;r++){ __m512i x=_mm512_set1_epi32(*(int32_t*)(xq+b*384+r*32+4*q));
        is[r][0]=_mm512_dpbusd_epi32(is[r][0],a,x); is[r][1]=_mm512_dpbusd_epi32(is[r][1],c,x);} }
    __m512 d0=_mm512_loadu_ps(s0+b*16), d1=_mm512_loadu_ps(s1+b*16);
    for(int r=0;r<R1;r++){ __m512 x=_mm512_set1_ps(xd[b*12+r]);
      acc[r][0]=_mm512_add_ps(acc[r][0],_mm512_mul_ps(_mm512_cvtepi32_ps(is[r][0]),_mm512_mul_ps(d0,x)));
      acc[r][1]=_mm512_add_ps(acc[r][1],_mm512_mul_ps(_mm512_cvtepi32_ps(is[r][1]),_mm512_mul_ps(d1,x))); }
  }
  for(int r=0;r<R1;r++) for(int j=0;j<2;j++) _mm512_storeu_ps(out+r*32+j*16,acc[r][j]);
}
int main(){
  memset(wq,1,sizeof wq); memset(xq,1,sizeof xq);
  for(int i=0;i<NB*16;i++) for(int g=0;g<4;g++) ws[g][i]=1e-9f;
  for(int i=0;i<NB*12;i++){xd[i]=1e-9f;}
  long N=2000000; double t0,t;
  for(int rep=0;rep<2;rep++){
  t0=now(); for(long n=0;n<N;n++) v0(n&1); t=now()-t0;
  printf("v0 12x16: %.1f GMAC/s\n", N*12.0*16*32*NB/t/1e9);
  t0=now(); for(long n=0;n<N;n++) { v1(0); } t=now()-t0;
  printf("v1 %dx32: %.1f GMAC/s\n", R1, N*(double)R1*32*32*NB/t/1e9);
  }
}
