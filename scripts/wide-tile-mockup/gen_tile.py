"""Writes tile.s: the wide Q8_0 tile (16 weight rows x 12 activation rows, AVX-512 VNNI) in
hand-written assembly, with activations 12 rows x 32 bytes per block at fixed offsets, as
`tile_major` lays them out. A diagnostic for `shared/kernels/src/x86/q8_0/` (`tiles.rs`, `wide.rs`), not used by it.

    python3 gen_tile.py K N ORDER   (ORDER: chain = per accumulator, inter = per weight vector)
"""
import sys
R=12; K=int(sys.argv[1]); N=int(sys.argv[2]); order=sys.argv[3]; KB=K//32
s=[".intel_syntax noprefix",".text",".globl tile","tile:","mov rax, [rsp+8]"]
# rdi=w rsi=x rdx=nb rcx=ws r8=off r9=xd rax=out
for r in range(R): s.append(f"vmovups zmm{20+r}, [rax+{r*N*4}]")
s.append("1:")
for q in range(8): s.append(f"vmovdqu64 zmm{q}, [rdi+{q*64}]")
for r in range(R): s.append(f"vpxord zmm{8+r}, zmm{8+r}, zmm{8+r}")
pairs=[(r,q) for r in range(R) for q in range(8)] if order=="chain" else [(r,q) for q in range(8) for r in range(R)]
for r,q in pairs: s.append(f"vpdpbusd zmm{8+r}, zmm{q}, dword ptr [rsi+{r*K+4*q}]{{1to16}}")
s.append("vmovups zmm0, [rcx]")
for r in range(R):
    s.append(f"vpsubd zmm{8+r}, zmm{8+r}, dword ptr [r8+{r*4*KB}]{{1to16}}")
    s.append(f"vmulps zmm1, zmm0, dword ptr [r9+{r*4*KB}]{{1to16}}")
    s.append(f"vcvtdq2ps zmm{8+r}, zmm{8+r}")
    s.append(f"vmulps zmm{8+r}, zmm{8+r}, zmm1")
    s.append(f"vaddps zmm{20+r}, zmm{20+r}, zmm{8+r}")
s += ["add rcx, 64","add r8, 4","add r9, 4","add rdi, 512","add rsi, 32","dec rdx","jnz 1b"]
for r in range(R): s.append(f"vmovups [rax+{r*N*4}], zmm{20+r}")
s += ["vzeroupper","ret"]
open("tile.s","w").write("\n".join(s)+"\n")
