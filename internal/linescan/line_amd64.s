//go:build !purego

#include "textflag.h"

// func line(b []byte, sep, first, last byte) (end int, maybe bool)
//
// X0, X1, X2 hold sep, first and last in every byte. Each step loads the
// sixteen bytes at i and the sixteen at i+3: sep bits of the first, and
// first bits of the first ANDed with last bits of the second, as two
// 16-bit masks (R12, R13). A step needs b[i:i+19]; the last positions,
// fewer than nineteen bytes before the end, go one byte at a time.
// maybe accumulates in R14; at the first sep it keeps only the candidate
// bits below the sep's position.
TEXT ·line(SB), NOSPLIT, $0-41
	MOVQ	b_base+0(FP), SI
	MOVQ	b_len+8(FP), CX
	MOVBQZX	sep+24(FP), AX
	MOVBQZX	first+25(FP), BX
	MOVBQZX	last+26(FP), DX
	MOVQ	$0x0101010101010101, R9
	MOVQ	AX, R11
	IMULQ	R9, R11
	MOVQ	R11, X0
	PUNPCKLQDQ	X0, X0
	MOVQ	BX, R11
	IMULQ	R9, R11
	MOVQ	R11, X1
	PUNPCKLQDQ	X1, X1
	MOVQ	DX, R11
	IMULQ	R9, R11
	MOVQ	R11, X2
	PUNPCKLQDQ	X2, X2
	XORQ	DI, DI  // i
	XORQ	R14, R14 // maybe

loop:
	MOVQ	CX, R8
	SUBQ	DI, R8
	CMPQ	R8, $19
	JLT	tail
	MOVOU	(SI)(DI*1), X3
	MOVOU	3(SI)(DI*1), X4
	MOVOU	X3, X5
	PCMPEQB	X0, X5 // sep
	PCMPEQB	X1, X3 // first
	PCMPEQB	X2, X4 // last, three bytes on
	PAND	X4, X3
	PMOVMSKB	X5, R12
	PMOVMSKB	X3, R13
	TESTL	R12, R12
	JNZ	found
	ORQ	R13, R14
	ADDQ	$16, DI
	JMP	loop

found:
	BSFL	R12, R12
	// keep the candidates below the sep: R13 &= (1<<R12)-1
	MOVQ	$1, R15
	MOVQ	R12, CX
	SHLQ	CX, R15
	DECQ	R15
	ANDQ	R15, R13
	ORQ	R13, R14
	ADDQ	DI, R12
	MOVQ	R12, end+32(FP)
	TESTQ	R14, R14
	SETNE	maybe+40(FP)
	RET

tail:
	CMPQ	DI, CX
	JGE	notfound
	MOVBQZX	(SI)(DI*1), R12
	CMPQ	R12, AX
	JEQ	tailsep
	CMPQ	R12, BX
	JNE	next
	LEAQ	3(DI), R13
	CMPQ	R13, CX
	JGE	next
	MOVBQZX	3(SI)(DI*1), R13
	CMPQ	R13, DX
	JNE	next
	MOVQ	$1, R14

next:
	INCQ	DI
	JMP	tail

tailsep:
	MOVQ	DI, end+32(FP)
	TESTQ	R14, R14
	SETNE	maybe+40(FP)
	RET

notfound:
	MOVQ	$-1, end+32(FP)
	TESTQ	R14, R14
	SETNE	maybe+40(FP)
	RET

// func lineAVX2(b []byte, sep, first, last byte) (i int, seps, cands uint64, maybe bool)
//
// line's search, 64 positions a step (a step needs b[i:i+67]): Y0, Y1, Y2
// hold sep, first and last; a step compares the 64 bytes at i with sep
// and, when none is sep, ORs the first-and-last bits of all 64 into R14
// (maybe). At the step with a sep it returns i and the step's sep and
// candidate bits as 64-bit masks, for lineFast to finish; with fewer than
// 67 bytes left it returns seps 0 and the i where line takes over.
TEXT ·lineAVX2(SB), NOSPLIT, $0-57
	MOVQ	b_base+0(FP), SI
	MOVQ	b_len+8(FP), CX
	MOVBQZX	sep+24(FP), AX
	MOVBQZX	first+25(FP), BX
	MOVBQZX	last+26(FP), DX
	MOVQ	AX, X0
	VPBROADCASTB	X0, Y0
	MOVQ	BX, X1
	VPBROADCASTB	X1, Y1
	MOVQ	DX, X2
	VPBROADCASTB	X2, Y2
	XORQ	DI, DI
	XORQ	R14, R14
	XORQ	R12, R12
	XORQ	R13, R13

loop64:
	MOVQ	CX, R8
	SUBQ	DI, R8
	CMPQ	R8, $67
	JLT	done
	VMOVDQU	(SI)(DI*1), Y3
	VMOVDQU	32(SI)(DI*1), Y4
	VPCMPEQB	Y0, Y3, Y7
	VPCMPEQB	Y0, Y4, Y8
	VPOR	Y7, Y8, Y9
	VMOVDQU	3(SI)(DI*1), Y5
	VMOVDQU	35(SI)(DI*1), Y6
	VPCMPEQB	Y1, Y3, Y3
	VPCMPEQB	Y2, Y5, Y5
	VPAND	Y3, Y5, Y3
	VPCMPEQB	Y1, Y4, Y4
	VPCMPEQB	Y2, Y6, Y6
	VPAND	Y4, Y6, Y4
	VPTEST	Y9, Y9
	JNZ	found64
	VPOR	Y3, Y4, Y3
	VPMOVMSKB	Y3, R13
	ORQ	R13, R14
	ADDQ	$64, DI
	JMP	loop64

found64:
	VPMOVMSKB	Y7, R12
	VPMOVMSKB	Y8, R11
	SHLQ	$32, R11
	ORQ	R11, R12 // sep bits of the 64
	VPMOVMSKB	Y3, R13
	VPMOVMSKB	Y4, R11
	SHLQ	$32, R11
	ORQ	R11, R13 // candidate bits of the 64

done:
	VZEROUPPER
	MOVQ	DI, i+32(FP)
	MOVQ	R12, seps+40(FP)
	MOVQ	R13, cands+48(FP)
	TESTQ	R14, R14
	SETNE	maybe+56(FP)
	RET
