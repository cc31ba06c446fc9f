/*
 * petra-msm: multi-exponentiations over BN254 G1 and G2, and the FFTs of a Groth16 proof's
 * quotient, for mixer/native-msm.ts, as a long-lived child process. Field elements arrive exactly
 * as ffjavascript keeps them (32-byte little-endian Montgomery form, R = 2^256 mod q), which on a
 * little-endian machine is 4 uint64 limbs in Montgomery form, so bases are used as they are and
 * results go back in the same form.
 *
 * Protocol (all integers little-endian u32), one request at a time, answered in order:
 *   request:  op, set, count, payload bytes, payload
 *     op 1: store `count` affine G1 bases (64 bytes each) as base set `set`
 *     op 2: store `count` affine G2 bases (128 bytes each) as base set `set`
 *     op 3: multiply base set `set` by `count` scalars (32 bytes each, standard form, little-endian)
 *     op 4: build a fixed-base table for base set `set` (`count`: window bits, 0 to choose; no payload)
 *     op 5: H's scalars for a domain of `count` = n points (`set` unused): the payload is w (a
 *           primitive n-th root of unity), the coset's shift, then A, B, C evaluated on the domain,
 *           all 32-byte Montgomery Fr elements; the answer is A * B - C on the coset, n scalars in
 *           standard form
 *   response: status, payload bytes, payload
 *     status 0: ok; the payload is empty (ops 1, 2, 4), the Jacobian result x, y, z (op 3) or
 *               the n scalars (op 5)
 *     status 1: the request was refused; the payload is a UTF-8 message. The stream stays in step
 *               (the refused request's payload was read), so later requests are served.
 * End of input ends the process with status 0. argv[1] is the number of threads (default 2).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
/* The wire format is ffjavascript's bytes read as limbs in place; a big-endian build would need
   byte swaps, and failing here makes the Prover fall back to wasm. */
#error "petra-msm assumes a little-endian machine"
#endif

typedef uint64_t u64;
typedef unsigned __int128 u128;

#define MAX_THREADS 64
/* Pending affine additions that share one inversion (see curve.h). */
#define BATCH 1024
enum { KIND_ADD = 0, KIND_DBL = 1, KIND_CANCEL = 2 };
#define LANES 4
#define MAX_SETS 64
/* Large enough for any circuit this lab builds, small enough to refuse a garbled header. */
#define MAX_PAYLOAD (1u << 30)
/* A table's windows cover any 256-bit scalar and the carry out of its top signed digit. */
#define TABLE_BITS 257

/* ---------------------------------------------------------------- Fp, 4 x 64-bit Montgomery */

typedef u64 fp[4];

static const u64 Q[4] = {0x3c208c16d87cfd47ULL, 0x97816a916871ca8dULL, 0xb85045b68181585dULL,
                         0x30644e72e131a029ULL};
/* -q^-1 mod 2^64 */
static const u64 QINV = 0x87d20782e4866389ULL;
/* R mod q: 1 in Montgomery form */
static const u64 ONE[4] = {0xd35d438dc58f0d9dULL, 0x0a78eb28f5c70b3dULL, 0x666ea36f7879462cULL,
                           0x0e0a77c19a07df2fULL};
/* The curve constants b in Montgomery form: 3 for G1, 3 / (9 + u) for the twist. */
static const fp B1 = {0x7a17caa950ad28d7ULL, 0x1f6ac17ae15521b9ULL, 0x334bea4e696bd284ULL, 0x2a1f6744ce179d8eULL};
static const fp B2[2] = {
    {0x3bf938e377b802a8ULL, 0x020b1b273633535dULL, 0x26b7edf049755260ULL, 0x2514c6324384a86dULL},
    {0x38e7ecccd1dcff67ULL, 0x65f0b37d93ce0d3eULL, 0xd749d0dd22ac00aaULL, 0x0141b9ce4a688d4dULL}};
/* BN254's group order r, which the scalars are taken modulo by the group itself */

/*
 * The Montgomery arithmetic is written once over a modulus m < 2^254 and instantiated for q (the
 * curves' base field) and r (the scalar field, for the quotient's FFTs); inlined with constant
 * moduli, gcc folds them in.
 */
static inline int geq_m(const u64 a[4], const u64 m[4]) {
  for (int i = 3; i >= 0; i--) {
    if (a[i] != m[i]) return a[i] > m[i];
  }
  return 1;
}

static inline void sub_m(u64 a[4], const u64 m[4]) {
  u128 d;
  u64 borrow = 0;
  for (int i = 0; i < 4; i++) {
    d = (u128)a[i] - m[i] - borrow;
    a[i] = (u64)d;
    borrow = (u64)(d >> 64) & 1;
  }
}

/*
 * r = t - m if t >= m, else t, for t < 2m, without a branch: which way it goes is data-dependent
 * and mispredicts often enough to cost more than the subtraction.
 */
static inline void reduce_once(u64 r[4], const u64 t[4], const u64 m[4]) {
  u64 s[4];
  u128 d;
  u64 borrow = 0;
  for (int i = 0; i < 4; i++) {
    d = (u128)t[i] - m[i] - borrow;
    s[i] = (u64)d;
    borrow = (u64)(d >> 64) & 1;
  }
  u64 keep = (u64)0 - borrow; /* all ones when t < m */
  for (int i = 0; i < 4; i++) r[i] = (t[i] & keep) | (s[i] & ~keep);
}

/* m < 2^254, so a + b of reduced values fits in 4 limbs. */
static inline void add_m(u64 r[4], const u64 a[4], const u64 b[4], const u64 m[4]) {
  u64 t[4];
  u128 c = 0;
  for (int i = 0; i < 4; i++) {
    c = (u128)a[i] + b[i] + (u64)(c >> 64);
    t[i] = (u64)c;
  }
  reduce_once(r, t, m);
}

static inline void subtract_m(u64 r[4], const u64 a[4], const u64 b[4], const u64 m[4]) {
  u64 t[4];
  u128 d;
  u64 borrow = 0;
  for (int i = 0; i < 4; i++) {
    d = (u128)a[i] - b[i] - borrow;
    t[i] = (u64)d;
    borrow = (u64)(d >> 64) & 1;
  }
  u64 mask = (u64)0 - borrow;
  u128 c = 0;
  for (int i = 0; i < 4; i++) {
    c = (u128)t[i] + (m[i] & mask) + (u64)(c >> 64);
    r[i] = (u64)c;
  }
}

/*
 * Montgomery product a * b / 2^256 mod m, operand scanning with the reduction interleaved (CIOS).
 * m's top limb is below 2^62, so the running value never needs a sixth limb.
 */
static inline void mul_m(u64 r[4], const u64 a[4], const u64 b[4], const u64 m[4], u64 minv) {
  u64 t0 = 0, t1 = 0, t2 = 0, t3 = 0, t4 = 0;
  for (int i = 0; i < 4; i++) {
    u64 bi = b[i];
    u128 c;
    c = (u128)a[0] * bi + t0;
    t0 = (u64)c;
    c = (u128)a[1] * bi + t1 + (u64)(c >> 64);
    t1 = (u64)c;
    c = (u128)a[2] * bi + t2 + (u64)(c >> 64);
    t2 = (u64)c;
    c = (u128)a[3] * bi + t3 + (u64)(c >> 64);
    t3 = (u64)c;
    t4 = (u64)(c >> 64);

    u64 k = t0 * minv;
    c = (u128)k * m[0] + t0;
    c = (u128)k * m[1] + t1 + (u64)(c >> 64);
    t0 = (u64)c;
    c = (u128)k * m[2] + t2 + (u64)(c >> 64);
    t1 = (u64)c;
    c = (u128)k * m[3] + t3 + (u64)(c >> 64);
    t2 = (u64)c;
    t3 = t4 + (u64)(c >> 64);
  }
  r[0] = t0;
  r[1] = t1;
  r[2] = t2;
  r[3] = t3;
  /* A branch here measured ~5% faster than reduce_once: the result is below m most of the time. */
  if (geq_m(r, m)) sub_m(r, m);
}

static inline int fp_geq_q(const u64 a[4]) { return geq_m(a, Q); }
static inline void fp_add(fp r, const fp a, const fp b) { add_m(r, a, b, Q); }
static inline void fp_sub(fp r, const fp a, const fp b) { subtract_m(r, a, b, Q); }
static inline void fp_mul(fp r, const fp a, const fp b) { mul_m(r, a, b, Q, QINV); }

static inline void fp_dbl(fp r, const fp a) { fp_add(r, a, a); }

static inline int fp_is_zero(const fp a) { return (a[0] | a[1] | a[2] | a[3]) == 0; }

static inline int fp_eq(const fp a, const fp b) {
  return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0;
}

static inline void fp_neg(fp r, const fp a) {
  if (fp_is_zero(a)) {
    memset(r, 0, sizeof(fp));
    return;
  }
  fp zero = {0, 0, 0, 0};
  fp_sub(r, zero, a);
}

static inline void fp_sqr(fp r, const fp a) { fp_mul(r, a, a); }

/* ---------------------------------------------------------------- Fp2 = Fp[u] / (u^2 + 1) */

typedef struct {
  fp c0, c1;
} fp2;

static inline void fp2_add(fp2 *r, const fp2 *a, const fp2 *b) {
  fp_add(r->c0, a->c0, b->c0);
  fp_add(r->c1, a->c1, b->c1);
}

static inline void fp2_sub(fp2 *r, const fp2 *a, const fp2 *b) {
  fp_sub(r->c0, a->c0, b->c0);
  fp_sub(r->c1, a->c1, b->c1);
}

static inline void fp2_dbl(fp2 *r, const fp2 *a) { fp2_add(r, a, a); }

static inline void fp2_neg(fp2 *r, const fp2 *a) {
  fp_neg(r->c0, a->c0);
  fp_neg(r->c1, a->c1);
}

/* Karatsuba: three Fp products instead of four. */
static inline void fp2_mul(fp2 *r, const fp2 *a, const fp2 *b) {
  fp t0, t1, s0, s1, m;
  fp_mul(t0, a->c0, b->c0);
  fp_mul(t1, a->c1, b->c1);
  fp_add(s0, a->c0, a->c1);
  fp_add(s1, b->c0, b->c1);
  fp_mul(m, s0, s1);
  fp_sub(r->c0, t0, t1);
  fp_sub(m, m, t0);
  fp_sub(r->c1, m, t1);
}

/* (a0 + a1 u)^2 = (a0 + a1)(a0 - a1) + 2 a0 a1 u */
static inline void fp2_sqr(fp2 *r, const fp2 *a) {
  fp s, d, p;
  fp_add(s, a->c0, a->c1);
  fp_sub(d, a->c0, a->c1);
  fp_mul(p, a->c0, a->c1);
  fp_mul(r->c0, s, d);
  fp_dbl(r->c1, p);
}

static inline int fp2_is_zero(const fp2 *a) { return fp_is_zero(a->c0) && fp_is_zero(a->c1); }
static inline int fp2_eq(const fp2 *a, const fp2 *b) { return fp_eq(a->c0, b->c0) && fp_eq(a->c1, b->c1); }

/* a^(q-2) = 1/a (Fermat). Only the table builds invert, once per batch, so speed does not matter. */
static void fp_inv(fp r, const fp a) {
  static const u64 E[4] = {0x3c208c16d87cfd45ULL, 0x97816a916871ca8dULL, 0xb85045b68181585dULL,
                           0x30644e72e131a029ULL};
  fp acc;
  memcpy(acc, ONE, sizeof(fp));
  for (int bit = 253; bit >= 0; bit--) {
    fp_sqr(acc, acc);
    if ((E[bit >> 6] >> (bit & 63)) & 1) fp_mul(acc, acc, a);
  }
  memcpy(r, acc, sizeof(fp));
}

/* 1/(a0 + a1 u) = (a0 - a1 u) / (a0^2 + a1^2) */
static void fp2_inv(fp2 *r, const fp2 *a) {
  fp t0, t1, n;
  fp_sqr(t0, a->c0);
  fp_sqr(t1, a->c1);
  fp_add(n, t0, t1);
  fp_inv(n, n);
  fp_mul(r->c0, a->c0, n);
  fp_mul(t1, a->c1, n);
  fp_neg(r->c1, t1);
}

/* ---------------------------------------------------------------- the two groups */

#define FE fp
#define FE_ADD(r, a, b) fp_add(r, a, b)
#define FE_SUB(r, a, b) fp_sub(r, a, b)
#define FE_MUL(r, a, b) fp_mul(r, a, b)
#define FE_SQR(r, a) fp_sqr(r, a)
#define FE_DBL(r, a) fp_dbl(r, a)
#define FE_NEG(r, a) fp_neg(r, a)
#define FE_IS_ZERO(a) fp_is_zero(a)
#define FE_EQ(a, b) fp_eq(a, b)
#define FE_SET_ZERO(a) memset(a, 0, sizeof(fp))
#define FE_SET_ONE(a) memcpy(a, ONE, sizeof(fp))
#define FE_INV(r, a) fp_inv(r, a)
#define P(name) g1_##name
#include "curve.h"
#undef FE
#undef FE_ADD
#undef FE_SUB
#undef FE_MUL
#undef FE_SQR
#undef FE_DBL
#undef FE_NEG
#undef FE_IS_ZERO
#undef FE_EQ
#undef FE_SET_ZERO
#undef FE_SET_ONE
#undef FE_INV
#undef P

#define FE fp2
#define FE_ADD(r, a, b) fp2_add(&(r), &(a), &(b))
#define FE_SUB(r, a, b) fp2_sub(&(r), &(a), &(b))
#define FE_MUL(r, a, b) fp2_mul(&(r), &(a), &(b))
#define FE_SQR(r, a) fp2_sqr(&(r), &(a))
#define FE_DBL(r, a) fp2_dbl(&(r), &(a))
#define FE_NEG(r, a) fp2_neg(&(r), &(a))
#define FE_IS_ZERO(a) fp2_is_zero(&(a))
#define FE_EQ(a, b) fp2_eq(&(a), &(b))
#define FE_SET_ZERO(a) memset(&(a), 0, sizeof(fp2))
#define FE_SET_ONE(a) (memcpy((a).c0, ONE, sizeof(fp)), memset((a).c1, 0, sizeof(fp)))
#define FE_INV(r, a) fp2_inv(&(r), &(a))
#define P(name) g2_##name
#include "curve.h"

/* ---------------------------------------------------------------- scalars to signed digits */

/* Bits [bit, bit + c) of a 256-bit little-endian scalar given as 4 limbs (c <= 16). */
static inline unsigned bits_at(const u64 s[4], int bit, int c) {
  int limb = bit >> 6, off = bit & 63;
  if (limb >= 4) return 0;
  u64 v = s[limb] >> off;
  if (off + c > 64 && limb + 1 < 4) v |= s[limb + 1] << (64 - off);
  return (unsigned)(v & ((1ULL << c) - 1));
}

/*
 * Signed base-2^c digits in (-2^(c-1), 2^(c-1)]: a digit above 2^(c-1) becomes digit - 2^c with a
 * carry into the next window, so half as many buckets serve (a point is negated for free).
 * `skip[i]` forces all of point i's digits to 0 (a base at infinity).
 */
static void signed_digits(int16_t *out, const u64 *scalars, const unsigned char *skip, size_t n, int windows,
                          int c) {
  unsigned half = 1u << (c - 1);
  for (size_t i = 0; i < n; i++) {
    int16_t *d = out + i * (size_t)windows;
    if (skip[i]) {
      memset(d, 0, (size_t)windows * sizeof(int16_t));
      continue;
    }
    const u64 *s = scalars + 4 * i;
    unsigned carry = 0;
    for (int w = 0; w < windows; w++) {
      unsigned v = bits_at(s, w * c, c) + carry;
      if (v > half) {
        d[w] = (int16_t)((int)v - (int)(1u << c));
        carry = 1;
      } else {
        d[w] = (int16_t)v;
        carry = 0;
      }
    }
  }
}

static int bit_length(const u64 *scalars, size_t n) {
  u64 top[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    for (int k = 0; k < 4; k++) top[k] |= scalars[4 * i + k];
  }
  for (int k = 3; k >= 0; k--) {
    if (top[k]) return 64 * k + 64 - __builtin_clzll(top[k]);
  }
  return 0;
}

/*
 * The window width that minimises the estimated work: per window one mixed addition per point
 * and two full additions (~1.5 mixed ones each) per bucket of the 2^(c-1).
 */
static int window_bits(size_t n, int bits) {
  int best = 1;
  double best_cost = -1;
  for (int c = 2; c <= 16; c++) {
    int windows = (bits + 1 + c - 1) / c;
    double cost = (double)windows * ((double)n + 3.0 * (double)(1u << (c - 1)));
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = c;
    }
  }
  return best;
}

/* ---------------------------------------------------------------- Fr and the quotient's FFTs */

/* The request loop's I/O (below), which quotient() answers through. */
static int read_all(void *buf, size_t len);
static int skip_payload(size_t len);
static void respond(uint32_t status, const void *payload, uint32_t len);
static void refuse(const char *fmt, ...);

static const u64 RMOD[4] = {0x43e1f593f0000001ULL, 0x2833e84879b97091ULL, 0xb85045b68181585dULL,
                            0x30644e72e131a029ULL};
static const u64 RINV = 0xc2e1f593efffffffULL;
static const u64 RONE[4] = {0xac96341c4ffffffbULL, 0x36fc76959f60cd29ULL, 0x666ea36f7879462eULL,
                            0x0e0a77c19a07df2fULL};

static inline void fr_mul(fp r, const fp a, const fp b) { mul_m(r, a, b, RMOD, RINV); }
static inline void fr_add(fp r, const fp a, const fp b) { add_m(r, a, b, RMOD); }
static inline void fr_sub(fp r, const fp a, const fp b) { subtract_m(r, a, b, RMOD); }

static void fr_inv(fp r, const fp a) {
  static const u64 E[4] = {0x43e1f593efffffffULL, 0x2833e84879b97091ULL, 0xb85045b68181585dULL,
                           0x30644e72e131a029ULL};
  fp acc;
  memcpy(acc, RONE, sizeof(fp));
  for (int bit = 253; bit >= 0; bit--) {
    fr_mul(acc, acc, acc);
    if ((E[bit >> 6] >> (bit & 63)) & 1) fr_mul(acc, acc, a);
  }
  memcpy(r, acc, sizeof(fp));
}

/* In-place radix-2 transform of size n = 2^log_n: x[i] <- sum_k x[k] w^(ik), natural order in and out. */
static void ntt(fp *x, size_t n, int log_n, const fp w, fp *twiddles) {
  for (size_t i = 1, j = 0; i < n; i++) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      fp t;
      memcpy(t, x[i], sizeof(fp));
      memcpy(x[i], x[j], sizeof(fp));
      memcpy(x[j], t, sizeof(fp));
    }
  }
  /* twiddles[k] = w^k for k < n/2; the stage of length len uses every (n/len)-th. */
  memcpy(twiddles[0], RONE, sizeof(fp));
  for (size_t k = 1; k < n / 2; k++) fr_mul(twiddles[k], twiddles[k - 1], w);
  for (int s = 1; s <= log_n; s++) {
    size_t len = (size_t)1 << s, half = len >> 1, stride = n >> s;
    for (size_t start = 0; start < n; start += len) {
      for (size_t k = 0; k < half; k++) {
        fp t;
        fr_mul(t, x[start + k + half], twiddles[k * stride]);
        fr_sub(x[start + k + half], x[start + k], t);
        fr_add(x[start + k], x[start + k], t);
      }
    }
  }
}

typedef struct {
  fp *x;
  size_t n;
  int log_n;
  const u64 *w, *w_inv, *n_inv, *shift;
  int failed;
} coset_task;

/*
 * Evaluations on the domain (x[i] = P(w^i)) -> evaluations on its coset (P(shift * w^i)):
 * inverse transform to coefficients, coefficient k times shift^k / n, forward transform.
 */
static void *coset_worker(void *arg) {
  coset_task *t = arg;
  fp *twiddles = malloc((t->n / 2 + 1) * sizeof(fp));
  if (!twiddles) {
    t->failed = 1;
    return NULL;
  }
  ntt(t->x, t->n, t->log_n, t->w_inv, twiddles);
  fp f;
  memcpy(f, t->n_inv, sizeof(fp));
  for (size_t k = 0; k < t->n; k++) {
    fr_mul(t->x[k], t->x[k], f);
    fr_mul(f, f, t->shift);
  }
  ntt(t->x, t->n, t->log_n, t->w, twiddles);
  free(twiddles);
  return NULL;
}

/*
 * H's scalars, as snarkjs computes them: A, B, C (evaluations on the domain of size n, Montgomery
 * form) moved to the coset shift * <w>, then A * B - C, in standard form. The three transforms
 * run on their own threads.
 */
static void quotient(uint32_t n32, uint32_t bytes) {
  size_t n = n32;
  int log_n = 0;
  while (((size_t)1 << log_n) < n) log_n++;
  if (n < 2 || ((size_t)1 << log_n) != n || log_n > 28 || bytes != 64 + 3 * n * 32) {
    if (skip_payload(bytes) != 0) exit(2);
    refuse("quotient: domain size %u must be a power of 2 (2..2^28) and the payload 64 + 3 x 32 x %u bytes, got %u",
           n32, n32, bytes);
    return;
  }
  unsigned char *buf = malloc(bytes);
  if (!buf) {
    if (skip_payload(bytes) != 0) exit(2);
    refuse("quotient: out of memory");
    return;
  }
  if (read_all(buf, bytes) != 0) exit(2);
  fp w, shift, w_inv, n_inv;
  memcpy(w, buf, sizeof(fp));
  memcpy(shift, buf + 32, sizeof(fp));
  fp *abc = (fp *)(buf + 64);
  fr_inv(w_inv, w);
  memcpy(n_inv, RONE, sizeof(fp));
  for (int k = 0; k < log_n; k++) fr_add(n_inv, n_inv, n_inv);
  fr_inv(n_inv, n_inv);
  coset_task tasks[3];
  pthread_t ids[3];
  int started[3] = {0, 0, 0};
  for (int k = 0; k < 3; k++) tasks[k] = (coset_task){abc + (size_t)k * n, n, log_n, w, w_inv, n_inv, shift, 0};
  for (int k = 1; k < 3; k++) started[k] = pthread_create(&ids[k], NULL, coset_worker, &tasks[k]) == 0;
  coset_worker(&tasks[0]);
  int failed = tasks[0].failed;
  for (int k = 1; k < 3; k++) {
    if (started[k]) {
      pthread_join(ids[k], NULL);
      failed |= tasks[k].failed;
    } else {
      coset_worker(&tasks[k]);
      failed |= tasks[k].failed;
    }
  }
  if (failed) {
    free(buf);
    refuse("quotient: out of memory");
    return;
  }
  fp *a = abc, *b = abc + n, *c = abc + 2 * n;
  static const u64 STD_ONE[4] = {1, 0, 0, 0};
  for (size_t i = 0; i < n; i++) {
    fr_mul(a[i], a[i], b[i]);
    fr_sub(a[i], a[i], c[i]);
    /* Montgomery times 1 is out of Montgomery form. */
    fr_mul(a[i], a[i], STD_ONE);
  }
  respond(0, a, (uint32_t)(n * 32));
  free(buf);
}

/* ---------------------------------------------------------------- the request loop */

typedef struct {
  int group; /* 0: unset, 1: G1, 2: G2 */
  size_t n;
  void *points; /* g1_aff or g2_aff array */
  unsigned char *infinity;
  void *table; /* NULL, or n x table_windows points: 2^(table_c * j) * base i */
  int table_c, table_windows;
} base_set;

static base_set sets[MAX_SETS];
static int n_threads = 2;

static int read_all(void *buf, size_t len) {
  unsigned char *p = buf;
  while (len > 0) {
    size_t got = fread(p, 1, len, stdin);
    if (got == 0) return -1;
    p += got;
    len -= got;
  }
  return 0;
}

/* Reads and drops a refused request's payload, so the next header is read where it starts. */
static int skip_payload(size_t len) {
  unsigned char buf[65536];
  while (len > 0) {
    size_t k = len < sizeof buf ? len : sizeof buf;
    if (read_all(buf, k) != 0) return -1;
    len -= k;
  }
  return 0;
}

static void respond(uint32_t status, const void *payload, uint32_t len) {
  uint32_t head[2] = {status, len};
  if (fwrite(head, sizeof head, 1, stdout) != 1 || (len && fwrite(payload, len, 1, stdout) != 1) ||
      fflush(stdout) != 0) {
    /* The parent is gone: nobody to answer. */
    exit(3);
  }
}

static void refuse(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int len = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (len < 0) len = 0;
  if ((size_t)len >= sizeof msg) len = (int)sizeof msg - 1;
  respond(1, msg, (uint32_t)len);
}

static void store_bases(int group, uint32_t set, uint32_t count, uint32_t bytes) {
  size_t point_bytes = group == 1 ? sizeof(g1_aff) : sizeof(g2_aff);
  if (set >= MAX_SETS || (size_t)count * point_bytes != bytes) {
    if (skip_payload(bytes) != 0) exit(2);
    if (set >= MAX_SETS) {
      refuse("base set %u: sets are numbered 0..%d", set, MAX_SETS - 1);
    } else {
      refuse("base set %u: %u G%d points take %zu bytes, the request carries %u", set, count, group,
             (size_t)count * point_bytes, bytes);
    }
    return;
  }
  void *points = malloc(bytes ? bytes : 1);
  unsigned char *infinity = malloc(count ? count : 1);
  if (!points || !infinity) {
    free(points);
    free(infinity);
    if (skip_payload(bytes) != 0) exit(2);
    refuse("base set %u: out of memory for %u points", set, count);
    return;
  }
  if (read_all(points, bytes) != 0) exit(2);
  for (uint32_t i = 0; i < count; i++) {
    int ok;
    int inf;
    /* Coordinates must be reduced (< q) and the point on its curve: anything else means the
       bases were not in ffjavascript's Montgomery form, and every result would be garbage. */
    if (group == 1) {
      const g1_aff *a = (const g1_aff *)points + i;
      ok = !fp_geq_q(a->x) && !fp_geq_q(a->y) && g1_on_curve(a, B1);
      inf = fp_is_zero(a->x) && fp_is_zero(a->y);
    } else {
      const g2_aff *a = (const g2_aff *)points + i;
      fp2 b2;
      memcpy(b2.c0, B2[0], sizeof(fp));
      memcpy(b2.c1, B2[1], sizeof(fp));
      ok = !fp_geq_q(a->x.c0) && !fp_geq_q(a->x.c1) && !fp_geq_q(a->y.c0) && !fp_geq_q(a->y.c1) &&
           g2_on_curve(a, b2);
      inf = fp2_is_zero(&a->x) && fp2_is_zero(&a->y);
    }
    if (!ok) {
      free(points);
      free(infinity);
      refuse("base set %u: point %u is not an affine G%d point in Montgomery form", set, i, group);
      return;
    }
    infinity[i] = (unsigned char)inf;
  }
  free(sets[set].points);
  free(sets[set].infinity);
  free(sets[set].table);
  sets[set] = (base_set){group, count, points, infinity, NULL, 0, 0};
  respond(0, NULL, 0);
}

/*
 * With a table the windows of all points share one set of buckets, so there is one bucket
 * reduction per thread instead of one per window, and wider windows pay: per thread, n * windows
 * / threads mixed additions and ~3 * 2^(c-1) for the reduction.
 */
static int table_window_bits(size_t n, int threads) {
  int best = 2;
  double best_cost = -1;
  for (int c = 2; c <= 16; c++) {
    int windows = (TABLE_BITS + c - 1) / c;
    double cost = (double)windows * (double)n / threads + 3.0 * (double)(1u << (c - 1));
    if (best_cost < 0 || cost < best_cost) {
      best_cost = cost;
      best = c;
    }
  }
  return best;
}

static void build_table(uint32_t set, uint32_t c, uint32_t bytes) {
  base_set *s = set < MAX_SETS ? &sets[set] : NULL;
  if (bytes != 0 || !s || !s->group || c > 16 || c == 1) {
    if (skip_payload(bytes) != 0) exit(2);
    if (bytes != 0) {
      refuse("table for set %u: the request carries %u bytes, it takes none", set, bytes);
    } else if (!s || !s->group) {
      refuse("table: no base set %u was stored", set);
    } else {
      refuse("table for set %u: window bits must be 2..16 (or 0 to choose), got %u", set, c);
    }
    return;
  }
  int bits = c ? (int)c : table_window_bits(s->n, n_threads);
  int windows = (TABLE_BITS + bits - 1) / bits;
  void *table = s->group == 1 ? (void *)g1_build_table(s->points, s->infinity, s->n, windows, bits, n_threads)
                              : (void *)g2_build_table(s->points, s->infinity, s->n, windows, bits, n_threads);
  if (!table) {
    refuse("table for set %u: out of memory or threads", set);
    return;
  }
  free(s->table);
  s->table = table;
  s->table_c = bits;
  s->table_windows = windows;
  respond(0, NULL, 0);
}

static void multiply(uint32_t set, uint32_t count, uint32_t bytes) {
  const base_set *s = set < MAX_SETS ? &sets[set] : NULL;
  if (!s || !s->group || (size_t)count * 32 != bytes || count != s->n) {
    if (skip_payload(bytes) != 0) exit(2);
    if (!s || !s->group) {
      refuse("multiply: no base set %u was stored", set);
    } else if ((size_t)count * 32 != bytes) {
      refuse("multiply set %u: %u scalars take %zu bytes, the request carries %u", set, count,
             (size_t)count * 32, bytes);
    } else {
      refuse("multiply set %u: %u scalars for %zu bases", set, count, s->n);
    }
    return;
  }
  u64 *scalars = malloc(bytes ? bytes : 1);
  if (!scalars) {
    if (skip_payload(bytes) != 0) exit(2);
    refuse("multiply set %u: out of memory", set);
    return;
  }
  if (read_all(scalars, bytes) != 0) exit(2);
  int bits = bit_length(scalars, count);
  int c, windows;
  if (s->table) {
    c = s->table_c;
    windows = s->table_windows;
  } else {
    c = window_bits(count, bits);
    /* +1: a signed digit's carry out of the top window needs a window of its own. */
    windows = bits == 0 ? 0 : (bits + 1 + c - 1) / c;
  }
  int16_t *digits = malloc((size_t)count * (size_t)(windows ? windows : 1) * sizeof(int16_t));
  if (!digits) {
    free(scalars);
    refuse("multiply set %u: out of memory", set);
    return;
  }
  signed_digits(digits, scalars, s->infinity, count, windows, c);
  free(scalars);
  int threads = count < 64 ? 1 : n_threads;
  int rc;
  if (s->group == 1) {
    g1_jac out;
    rc = s->table ? g1_table_msm(&out, s->table, digits, count, windows, c, threads)
                  : g1_msm(&out, s->points, digits, count, windows, c, threads);
    if (rc == 0) respond(0, &out, sizeof out);
  } else {
    g2_jac out;
    rc = s->table ? g2_table_msm(&out, s->table, digits, count, windows, c, threads)
                  : g2_msm(&out, s->points, digits, count, windows, c, threads);
    if (rc == 0) respond(0, &out, sizeof out);
  }
  free(digits);
  if (rc != 0) refuse("multiply set %u: out of memory or threads", set);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    n_threads = atoi(argv[1]);
    if (n_threads < 1 || n_threads > MAX_THREADS) {
      fprintf(stderr, "petra-msm: threads must be 1..%d, got %s\n", MAX_THREADS, argv[1]);
      return 64;
    }
  }
  static char inbuf[1 << 16];
  setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
  for (;;) {
    uint32_t head[4];
    size_t got = fread(head, 1, sizeof head, stdin);
    if (got == 0 && feof(stdin)) return 0;
    if (got != sizeof head) {
      if (got < sizeof head && read_all((unsigned char *)head + got, sizeof head - got) != 0) {
        fprintf(stderr, "petra-msm: input ended inside a request header\n");
        return 2;
      }
    }
    uint32_t op = head[0], set = head[1], count = head[2], bytes = head[3];
    if (bytes > MAX_PAYLOAD) {
      /* No request is that large: the header is garbage and where the next one starts is unknown. */
      refuse("malformed request header (op %u, payload %u bytes): stream out of step, exiting", op, bytes);
      fprintf(stderr, "petra-msm: malformed request header (op %u, payload %u bytes)\n", op, bytes);
      return 2;
    }
    if (op < 1 || op > 5) {
      if (skip_payload(bytes) != 0) return 2;
      refuse("unknown request op %u (1-5 are defined)", op);
    } else if (op == 1 || op == 2) {
      store_bases((int)op, set, count, bytes);
    } else if (op == 3) {
      multiply(set, count, bytes);
    } else if (op == 4) {
      build_table(set, count, bytes);
    } else {
      quotient(count, bytes);
    }
  }
}
