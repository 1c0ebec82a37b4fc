// A C model of the Q8_0 AMX tile's loop (shared/kernels/src/x86/amx.rs), data in L1, against the
// wide AVX-512 form's (tile_model.c's v1): 16 activation rows x 16 weight rows per tile, per
// block of 32 values one tdpbssd (K = 32), tilestored, then each row's 16 sums scaled in f32 as
// the other forms do (a += float(sum) * (d_w * d_x)). "one": block by block; "two": two blocks
// through the tiles before either is scaled. docs/benchmarks.md, "AMX tiles for Q8_0".
// Run (Linux, a CPU with AMX-INT8):
//   gcc -O3 -march=sapphirerapids amx_model.c -o /tmp/amx && /tmp/amx
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define NB 8
static int8_t wq[2][NB*512] __attribute__((aligned(64)));   // per block a 8 x 64-byte B tile
static float ws[2][NB*16];
static int8_t xq[16*NB*32] __attribute__((aligned(64)));    // row-major, rows NB*32 bytes apart
static float xd[NB*16];
static int32_t offs[NB*16];
static float out[16*32] __attribute__((aligned(64)));
static int32_t sums[2][256] __attribute__((aligned(64)));
struct cfg { uint8_t palette, start; uint8_t reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } __attribute__((packed));

static void scale(__m512 acc[16], const int32_t *s, const float *dw, const float *dx){
  __m512 d=_mm512_loadu_ps(dw);
  for(int r=0;r<16;r++) acc[r]=_mm512_add_ps(acc[r],
      _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(s+r*16)),_mm512_mul_ps(d,_mm512_set1_ps(dx[r]))));
}
__attribute__((noinline)) void one(int g){
  __m512 acc[16]; for(int r=0;r<16;r++) acc[r]=_mm512_load_ps(out+r*32);
  for(int b=0;b<NB;b++){
    _tile_zero(0); _tile_loadd(2, xq+b*32, NB*32); _tile_loadd(3, wq[g]+b*512, 64);
    _tile_dpbssd(0,2,3); _tile_stored(0, sums[0], 64);
    scale(acc, sums[0], ws[g]+b*16, xd+b*16);
  }
  for(int r=0;r<16;r++) _mm512_store_ps(out+r*32,acc[r]);
}
__attribute__((noinline)) void two(int g){
  __m512 acc[16]; for(int r=0;r<16;r++) acc[r]=_mm512_load_ps(out+r*32);
  for(int b=0;b<NB;b+=2){
    _tile_zero(0); _tile_loadd(2, xq+b*32, NB*32); _tile_loadd(3, wq[g]+b*512, 64); _tile_dpbssd(0,2,3);
    _tile_zero(1); _tile_loadd(2, xq+(b+1)*32, NB*32); _tile_loadd(3, wq[g]+(b+1)*512, 64); _tile_dpbssd(1,2,3);
    _tile_stored(0, sums[0], 64); _tile_stored(1, sums[1], 64);
    scale(acc, sums[0], ws[g]+b*16, xd+b*16);
    scale(acc, sums[1], ws[g]+(b+1)*16, xd+(b+1)*16);
  }
  for(int r=0;r<16;r++) _mm512_store_ps(out+r*32,acc[r]);
}
__attribute__((noinline)) void wide(void){ // tile_model.c's v1: 4 rows x 32 weight rows
  __m512 acc[4][2]; for(int r=0;r<4;r++) for(int j=0;j<2;j++) acc[r][j]=_mm512_loadu_ps(out+r*32+j*16);
  for(int b=0;b<NB;b++){
    __m512i is[4][2]; for(int r=0;r<4;r++){ is[r][0]=_mm512_set1_epi32(-offs[b*16+r]); is[r][1]=is[r][0]; }
    for(int q=0;q<8;q++){ __m512i a=_mm512_loadu_si512(wq[0]+b*512+q*64), c=_mm512_loadu_si512(wq[1]+b*512+q*64);
      for(int r=0;r<4;r++){ __m512i x=_mm512_set1_epi32(*(int32_t*)(xq+b*128+r*32+4*q));
        is[r][0]=_mm512_dpbusd_epi32(is[r][0],a,x); is[r][1]=_mm512_dpbusd_epi32(is[r][1],c,x);} }
    __m512 d0=_mm512_loadu_ps(ws[0]+b*16), d1=_mm512_loadu_ps(ws[1]+b*16);
    for(int r=0;r<4;r++){ __m512 x=_mm512_set1_ps(xd[b*16+r]);
      acc[r][0]=_mm512_add_ps(acc[r][0],_mm512_mul_ps(_mm512_cvtepi32_ps(is[r][0]),_mm512_mul_ps(d0,x)));
      acc[r][1]=_mm512_add_ps(acc[r][1],_mm512_mul_ps(_mm512_cvtepi32_ps(is[r][1]),_mm512_mul_ps(d1,x))); }
  }
  for(int r=0;r<4;r++) for(int j=0;j<2;j++) _mm512_storeu_ps(out+r*32+j*16,acc[r][j]);
}
int main(){
  if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) { puts("no AMX"); return 1; }
  struct cfg c; memset(&c,0,sizeof c); c.palette=1;
  c.rows[0]=c.rows[1]=16; c.colsb[0]=c.colsb[1]=64;   // sums
  c.rows[2]=16; c.colsb[2]=32;                         // activations
  c.rows[3]=8;  c.colsb[3]=64;                         // weights
  _tile_loadconfig(&c);
  memset(wq,1,sizeof wq); memset(xq,1,sizeof xq);
  for(int i=0;i<NB*16;i++){ ws[0][i]=ws[1][i]=xd[i]=1e-9f; }
  long N=1000000; double t0,t;
  for(int rep=0;rep<3;rep++){
    t0=now(); for(long n=0;n<N;n++) one(n&1); t=now()-t0;
    printf("amx one block at a time: %.1f GMAC/s\n", N*16.0*16*32*NB/t/1e9);
    t0=now(); for(long n=0;n<N;n++) two(n&1); t=now()-t0;
    printf("amx two blocks at a time: %.1f GMAC/s\n", N*16.0*16*32*NB/t/1e9);
    t0=now(); for(long n=0;n<N;n++) wide(); t=now()-t0;
    printf("wide AVX-512 form: %.1f GMAC/s\n", N*4.0*32*32*NB/t/1e9);
  }
  _tile_zero(0); _tile_loadd(2, xq, NB*32); _tile_loadd(3, wq[0], 64); _tile_dpbssd(0,2,3); _tile_stored(0,sums[0],64);
  printf("check: %d %d (want 32 32)\n", sums[0][0], sums[0][255]);
  _tile_release();
  return 0;
}
