// Drives tile.s (gen_tile.py) over a K -> N product of M rows in the passes of
// `for_each_tile` (48 rows x PB blocks, every weight group, tiles of 12 rows) and prints
// GMAC/s for eight one-second rounds, alternating weights at a 64-byte boundary and 16 bytes
// off it. See run.sh.
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
void tile(const void* w, const void* x, long nb, const float* ws, const int* off, const float* xd, float* out);
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
int main(int argc,char**argv){ int K=atoi(argv[1]), N=atoi(argv[2]), M=atoi(argv[3]), PB=atoi(argv[4]); int kb=K/32, groups=N/16;
 int8_t* wbase=aligned_alloc(64,(size_t)N*K+64); int8_t* x=aligned_alloc(64,(size_t)M*K); float* wsb=aligned_alloc(64,(size_t)N*kb*4+64);
 int* off=aligned_alloc(64,(size_t)M*kb*4); float* xd=aligned_alloc(64,(size_t)M*kb*4); float* out=aligned_alloc(64,(size_t)M*N*4);
 for(size_t i=0;i<(size_t)N*K+64;i++) wbase[i]=i*7; for(size_t i=0;i<(size_t)M*K;i++) x[i]=i*3;
 for(size_t i=0;i<(size_t)N*kb+16;i++) wsb[i]=1e-3f; for(size_t i=0;i<(size_t)M*kb;i++){xd[i]=1e-3f;off[i]=0;} for(size_t i=0;i<(size_t)M*N;i++) out[i]=0;
 if(M<=48) PB=kb;
 for(int rep=0;rep<8;rep++){ int o = (rep%2)? 16:0; int8_t* w=wbase+o; float* ws=(float*)((char*)wsb+o); double t=now(); int it=0;
  while(now()-t<1.0){ it++;
   for(int r0=0;r0<M;r0+=48) for(int b0=0;b0<kb;b0+=PB) for(int g=0;g<groups;g++) for(int r=r0;r<r0+48 && r<M;r+=12)
     tile(w+(size_t)g*kb*512+(size_t)b0*512, x+(size_t)r*K+b0*32, PB<kb-b0?PB:kb-b0, ws+(size_t)g*kb*16+b0*16, off+r*kb+b0, xd+r*kb+b0, out+(size_t)r*N+g*16);
  }
  double dt=now()-t; printf("off%d %.1f  ", o, (double)it*M*N*K/dt/1e9);}
 printf("\n");
}
