/*
 * Jacobian arithmetic and the bucket multi-exponentiation for one group of BN254, written once
 * over a field and included twice by msm.c: G1 over Fp, G2 (on the twist) over Fp2. Both curves
 * are y^2 = x^3 + b with a = 0, so the a = 0 formulas (dbl-2009-l, madd-2007-bl, add-2007-bl from
 * the Explicit-Formulas Database) serve both. The includer defines:
 *   FE, FE_ADD, FE_SUB, FE_MUL, FE_SQR, FE_DBL, FE_NEG, FE_IS_ZERO, FE_EQ, FE_SET_ZERO, FE_SET_ONE
 *   P(name)  the prefix of every name defined here (g1_ / g2_).
 * A point with Z = 0 is the point at infinity; affine (0, 0) is ffjavascript's affine infinity.
 */

typedef struct {
  FE x, y, z;
} P(jac);

typedef struct {
  FE x, y;
} P(aff);

static inline int P(is_inf)(const P(jac) * p) { return FE_IS_ZERO(p->z); }

static inline void P(set_inf)(P(jac) * p) {
  FE_SET_ZERO(p->x);
  FE_SET_ONE(p->y);
  FE_SET_ZERO(p->z);
}

static void P(dbl)(P(jac) * r, const P(jac) * p) {
  if (P(is_inf)(p)) {
    *r = *p;
    return;
  }
  FE a, b, c, d, e, f, t;
  FE_SQR(a, p->x);
  FE_SQR(b, p->y);
  FE_SQR(c, b);
  FE_ADD(t, p->x, b);
  FE_SQR(d, t);
  FE_SUB(d, d, a);
  FE_SUB(d, d, c);
  FE_DBL(d, d);
  FE_DBL(e, a);
  FE_ADD(e, e, a);
  FE_SQR(f, e);
  FE z3;
  FE_MUL(z3, p->y, p->z);
  FE_DBL(r->z, z3);
  FE_SUB(r->x, f, d);
  FE_SUB(r->x, r->x, d);
  FE_SUB(t, d, r->x);
  FE_MUL(r->y, e, t);
  FE_DBL(c, c);
  FE_DBL(c, c);
  FE_DBL(c, c);
  FE_SUB(r->y, r->y, c);
}

/* r = p + q with q affine and not infinity; r may alias p. */
static void P(add_aff)(P(jac) * r, const P(jac) * p, const P(aff) * q) {
  if (P(is_inf)(p)) {
    memcpy(&r->x, &q->x, sizeof(FE));
    memcpy(&r->y, &q->y, sizeof(FE));
    FE_SET_ONE(r->z);
    return;
  }
  FE z1z1, u2, s2, h, hh, i, j, rr, v, t;
  FE_SQR(z1z1, p->z);
  FE_MUL(u2, q->x, z1z1);
  FE_MUL(s2, q->y, p->z);
  FE_MUL(s2, s2, z1z1);
  FE_SUB(h, u2, p->x);
  FE_SUB(rr, s2, p->y);
  if (FE_IS_ZERO(h)) {
    if (FE_IS_ZERO(rr)) {
      P(dbl)(r, p);
    } else {
      P(set_inf)(r);
    }
    return;
  }
  FE_DBL(rr, rr);
  FE_SQR(hh, h);
  FE_DBL(i, hh);
  FE_DBL(i, i);
  FE_MUL(j, h, i);
  FE_MUL(v, p->x, i);
  FE y1j;
  FE_MUL(y1j, p->y, j);
  FE_ADD(t, p->z, h);
  FE_SQR(t, t);
  FE_SUB(t, t, z1z1);
  FE_SUB(r->z, t, hh);
  FE_SQR(r->x, rr);
  FE_SUB(r->x, r->x, j);
  FE_SUB(r->x, r->x, v);
  FE_SUB(r->x, r->x, v);
  FE_SUB(t, v, r->x);
  FE_MUL(r->y, rr, t);
  FE_SUB(r->y, r->y, y1j);
  FE_SUB(r->y, r->y, y1j);
}

/* r = p + q; r may alias p or q. */
static void P(add)(P(jac) * r, const P(jac) * p, const P(jac) * q) {
  if (P(is_inf)(p)) {
    *r = *q;
    return;
  }
  if (P(is_inf)(q)) {
    *r = *p;
    return;
  }
  FE z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;
  FE_SQR(z1z1, p->z);
  FE_SQR(z2z2, q->z);
  FE_MUL(u1, p->x, z2z2);
  FE_MUL(u2, q->x, z1z1);
  FE_MUL(s1, p->y, q->z);
  FE_MUL(s1, s1, z2z2);
  FE_MUL(s2, q->y, p->z);
  FE_MUL(s2, s2, z1z1);
  FE_SUB(h, u2, u1);
  FE_SUB(rr, s2, s1);
  if (FE_IS_ZERO(h)) {
    if (FE_IS_ZERO(rr)) {
      P(dbl)(r, p);
    } else {
      P(set_inf)(r);
    }
    return;
  }
  FE_DBL(rr, rr);
  FE_DBL(i, h);
  FE_SQR(i, i);
  FE_MUL(j, h, i);
  FE_MUL(v, u1, i);
  FE_ADD(t, p->z, q->z);
  FE_SQR(t, t);
  FE_SUB(t, t, z1z1);
  FE_SUB(t, t, z2z2);
  FE_MUL(r->z, t, h);
  FE s1j;
  FE_MUL(s1j, s1, j);
  FE_SQR(r->x, rr);
  FE_SUB(r->x, r->x, j);
  FE_SUB(r->x, r->x, v);
  FE_SUB(r->x, r->x, v);
  FE_SUB(t, v, r->x);
  FE_MUL(r->y, rr, t);
  FE_SUB(r->y, r->y, s1j);
  FE_SUB(r->y, r->y, s1j);
}

/* Whether an affine point is on the curve y^2 = x^3 + b (infinity, (0, 0), counts as on it). */
static int P(on_curve)(const P(aff) * a, const FE b) {
  if (FE_IS_ZERO(a->x) && FE_IS_ZERO(a->y)) return 1;
  FE y2, x3;
  FE_SQR(y2, a->y);
  FE_SQR(x3, a->x);
  FE_MUL(x3, x3, a->x);
  FE_ADD(x3, x3, b);
  return FE_EQ(y2, x3);
}

/*
 * Buckets that add in affine coordinates, a batch at a time: BATCH pending additions share one
 * inversion (Montgomery's trick), after which each costs ~6 multiplications where a mixed
 * Jacobian addition costs ~11. A point whose bucket already has an addition pending in the batch
 * goes into that bucket's Jacobian side sum instead of waiting, so many equal digits (a witness
 * full of 0/1 wires) never serialise the batches.
 */
typedef struct {
  size_t nb;
  P(aff) * aff;          /* the affine part of each bucket, valid where filled */
  P(jac) * side;         /* the collisions, per bucket */
  unsigned char *filled; /* whether aff[b] holds a point */
  uint32_t *stamp;       /* the batch (epoch) aff[b] has an addition pending in */
  uint32_t epoch;
  size_t len;
  uint32_t *bucket; /* the batch: bucket, point to add (sign applied), denominator, prefix product, kind */
  P(aff) * point;
  FE *den, *prefix;
  unsigned char *kind;
} P(acc);

static void P(acc_free)(P(acc) * a) {
  free(a->aff);
  free(a->side);
  free(a->filled);
  free(a->stamp);
  free(a->bucket);
  free(a->point);
  free(a->den);
  free(a->prefix);
  free(a->kind);
}

static int P(acc_init)(P(acc) * a, size_t nb) {
  memset(a, 0, sizeof *a);
  a->nb = nb;
  a->epoch = 1;
  a->aff = malloc(nb * sizeof(P(aff)));
  a->side = malloc(nb * sizeof(P(jac)));
  a->filled = calloc(nb, 1);
  a->stamp = calloc(nb, sizeof(uint32_t));
  a->bucket = malloc(BATCH * sizeof(uint32_t));
  a->point = malloc(BATCH * sizeof(P(aff)));
  a->den = malloc(BATCH * sizeof(FE));
  a->prefix = malloc(BATCH * sizeof(FE));
  a->kind = malloc(BATCH);
  if (!a->aff || !a->side || !a->filled || !a->stamp || !a->bucket || !a->point || !a->den || !a->prefix ||
      !a->kind) {
    P(acc_free)(a);
    return -1;
  }
  for (size_t b = 0; b < nb; b++) P(set_inf)(&a->side[b]);
  return 0;
}

static void P(acc_flush)(P(acc) * a) {
  size_t m = a->len;
  if (m == 0) return;
  for (size_t k = 0; k < m; k++) {
    const P(aff) *b = &a->aff[a->bucket[k]];
    const P(aff) *p = &a->point[k];
    if (!FE_EQ(b->x, p->x)) {
      FE_SUB(a->den[k], p->x, b->x);
      a->kind[k] = KIND_ADD;
    } else if (FE_EQ(b->y, p->y) && !FE_IS_ZERO(b->y)) {
      FE_DBL(a->den[k], b->y);
      a->kind[k] = KIND_DBL;
    } else {
      /* P + (-P), or twice a point of order 2: infinity, and nothing to invert. */
      FE_SET_ONE(a->den[k]);
      a->kind[k] = KIND_CANCEL;
    }
    /* Four interleaved prefix chains rather than one: a chain of dependent multiplications runs
       at the multiplier's latency, four independent ones overlap (measured ~1.4x on the flush). */
    if (k < LANES) {
      memcpy(&a->prefix[k], &a->den[k], sizeof(FE));
    } else {
      FE_MUL(a->prefix[k], a->prefix[k - LANES], a->den[k]);
    }
  }
  FE total[LANES], lane_inv[LANES], p01, p23, all, inv, ik, lambda, t, x3;
  for (size_t l = 0; l < LANES; l++) {
    if (l < m) {
      memcpy(&total[l], &a->prefix[m - 1 - ((m - 1 - l) % LANES)], sizeof(FE));
    } else {
      FE_SET_ONE(total[l]);
    }
  }
  FE_MUL(p01, total[0], total[1]);
  FE_MUL(p23, total[2], total[3]);
  FE_MUL(all, p01, p23);
  FE_INV(inv, all);
  FE_MUL(t, inv, p23);
  FE_MUL(lane_inv[0], t, total[1]);
  FE_MUL(lane_inv[1], t, total[0]);
  FE_MUL(t, inv, p01);
  FE_MUL(lane_inv[2], t, total[3]);
  FE_MUL(lane_inv[3], t, total[2]);
  for (size_t k = m; k-- > 0;) {
    size_t l = k % LANES;
    if (k >= LANES) {
      FE_MUL(ik, lane_inv[l], a->prefix[k - LANES]);
      FE_MUL(lane_inv[l], lane_inv[l], a->den[k]);
    } else {
      memcpy(&ik, &lane_inv[l], sizeof(FE));
    }
    P(aff) *b = &a->aff[a->bucket[k]];
    const P(aff) *p = &a->point[k];
    if (a->kind[k] == KIND_CANCEL) {
      a->filled[a->bucket[k]] = 0;
      continue;
    }
    if (a->kind[k] == KIND_ADD) {
      FE_SUB(t, p->y, b->y);
    } else {
      FE_SQR(x3, b->x);
      FE_DBL(t, x3);
      FE_ADD(t, t, x3);
    }
    FE_MUL(lambda, t, ik);
    /* x3 = lambda^2 - x1 - x2 serves the doubling too (x2 = x1 there). */
    FE_SQR(x3, lambda);
    FE_SUB(x3, x3, b->x);
    FE_SUB(x3, x3, p->x);
    FE_SUB(t, b->x, x3);
    FE_MUL(t, lambda, t);
    FE_SUB(b->y, t, b->y);
    memcpy(&b->x, &x3, sizeof(FE));
  }
  a->len = 0;
  a->epoch++;
}

static inline void P(acc_add)(P(acc) * a, size_t b, const P(aff) * p, int negate) {
  if (!a->filled[b]) {
    a->aff[b] = *p;
    if (negate) FE_NEG(a->aff[b].y, a->aff[b].y);
    a->filled[b] = 1;
    return;
  }
  if (a->stamp[b] == a->epoch) {
    if (negate) {
      P(aff) q = *p;
      FE_NEG(q.y, q.y);
      P(add_aff)(&a->side[b], &a->side[b], &q);
    } else {
      P(add_aff)(&a->side[b], &a->side[b], p);
    }
    return;
  }
  a->stamp[b] = a->epoch;
  a->bucket[a->len] = (uint32_t)b;
  a->point[a->len] = *p;
  if (negate) FE_NEG(a->point[a->len].y, a->point[a->len].y);
  if (++a->len == BATCH) P(acc_flush)(a);
}

/* sum_k (k + 1) * bucket[first + k] over nb buckets, by the running-sum trick (two additions each). */
static void P(acc_reduce)(P(jac) * out, const P(acc) * a, size_t first, size_t nb) {
  P(jac) running, sum;
  P(set_inf)(&running);
  P(set_inf)(&sum);
  for (size_t k = nb; k-- > 0;) {
    size_t b = first + k;
    if (a->filled[b]) P(add_aff)(&running, &running, &a->aff[b]);
    if (!P(is_inf)(&a->side[b])) P(add)(&running, &running, &a->side[b]);
    P(add)(&sum, &sum, &running);
  }
  *out = sum;
}

typedef struct {
  const P(aff) * bases;
  const int16_t *digits; /* n x windows signed digits, point-major */
  size_t n;
  int windows, c, first, step;
  P(jac) * sums; /* one per window */
} P(task);

/*
 * The windows first, first+step, ... of one multi-exponentiation: each window has 2^(c-1) buckets,
 * a point goes into the one of its signed digit's absolute value (negated when the digit is
 * negative), and the buckets of all of this thread's windows share the batches, so that they
 * fill quickly and rarely collide.
 */
static void *P(windows_worker)(void *arg) {
  P(task) *t = arg;
  size_t nb = (size_t)1 << (t->c - 1);
  int local = (t->windows - t->first + t->step - 1) / t->step;
  if (local <= 0) return NULL;
  P(acc) acc;
  if (P(acc_init)(&acc, nb * (size_t)local) != 0) return (void *)1;
  size_t w = (size_t)t->windows;
  for (size_t i = 0; i < t->n; i++) {
    const int16_t *d = t->digits + i * w;
    for (int l = 0; l < local; l++) {
      int v = d[t->first + l * t->step];
      if (v > 0) {
        P(acc_add)(&acc, (size_t)l * nb + (size_t)(v - 1), &t->bases[i], 0);
      } else if (v < 0) {
        P(acc_add)(&acc, (size_t)l * nb + (size_t)(-v - 1), &t->bases[i], 1);
      }
    }
  }
  P(acc_flush)(&acc);
  for (int l = 0; l < local; l++) P(acc_reduce)(&t->sums[t->first + l * t->step], &acc, (size_t)l * nb, nb);
  P(acc_free)(&acc);
  return NULL;
}

/*
 * sum_i scalars_i * bases_i. The bases at infinity ((0, 0) affine) must have been given digits
 * of 0. Returns 0, or -1 when memory or a thread could not be had.
 */
static int P(msm)(P(jac) * out, const P(aff) * bases, const int16_t *digits, size_t n, int windows, int c,
                  int threads) {
  P(set_inf)(out);
  if (n == 0 || windows == 0) return 0;
  P(jac) *sums = malloc((size_t)windows * sizeof(P(jac)));
  if (!sums) return -1;
  if (threads > windows) threads = windows;
  if (threads < 1) threads = 1;
  P(task) tasks[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started = 0, failed = 0;
  for (int k = 0; k < threads; k++) {
    tasks[k] = (P(task)){bases, digits, n, windows, c, k, threads, sums};
  }
  /* The calling thread takes task 0 itself. */
  for (int k = 1; k < threads; k++) {
    if (pthread_create(&ids[k], NULL, P(windows_worker), &tasks[k]) != 0) {
      failed = 1;
      break;
    }
    started = k;
  }
  if (P(windows_worker)(&tasks[0]) != NULL) failed = 1;
  for (int k = 1; k <= started; k++) {
    void *rc;
    pthread_join(ids[k], &rc);
    if (rc != NULL) failed = 1;
  }
  if (failed) {
    free(sums);
    return -1;
  }
  /* Horner from the top window: c doublings between windows. */
  P(jac) acc = sums[windows - 1];
  for (int w = windows - 2; w >= 0; w--) {
    for (int k = 0; k < c; k++) P(dbl)(&acc, &acc);
    P(add)(&acc, &acc, &sums[w]);
  }
  *out = acc;
  free(sums);
  return 0;
}

/* ---------------------------------------------------------------- fixed-base tables */

/*
 * out[k] = the affine form of in[k] (none at infinity), with one inversion for all of them
 * (Montgomery's trick: invert the product, then peel one factor off per point).
 */
static void P(normalize)(P(aff) * out, const P(jac) * in, size_t m, FE *prefix) {
  if (m == 0) return;
  memcpy(&prefix[0], &in[0].z, sizeof(FE));
  for (size_t k = 1; k < m; k++) FE_MUL(prefix[k], prefix[k - 1], in[k].z);
  FE inv, zi, z2, z3;
  FE_INV(inv, prefix[m - 1]);
  for (size_t k = m; k-- > 0;) {
    if (k > 0) {
      FE_MUL(zi, inv, prefix[k - 1]);
      FE_MUL(inv, inv, in[k].z);
    } else {
      memcpy(&zi, &inv, sizeof(FE));
    }
    FE_SQR(z2, zi);
    FE_MUL(z3, z2, zi);
    FE_MUL(out[k].x, in[k].x, z2);
    FE_MUL(out[k].y, in[k].y, z3);
  }
}

typedef struct {
  const P(aff) * bases;
  const unsigned char *infinity;
  P(aff) * table; /* n x windows, point-major: entry i*windows + j is 2^(c*j) * base i */
  size_t lo, hi;
  int windows, c;
  int failed;
} P(table_task);

static void *P(table_worker)(void *arg) {
  P(table_task) *t = arg;
  size_t m = t->hi - t->lo, w = (size_t)t->windows;
  P(jac) *jac = malloc((m ? m : 1) * sizeof(P(jac)));
  P(aff) *aff = malloc((m ? m : 1) * sizeof(P(aff)));
  FE *prefix = malloc((m ? m : 1) * sizeof(FE));
  size_t *which = malloc((m ? m : 1) * sizeof(size_t));
  if (!jac || !aff || !prefix || !which) {
    t->failed = 1;
  } else {
    for (size_t i = t->lo; i < t->hi; i++) t->table[i * w] = t->bases[i];
    for (size_t j = 1; j < w; j++) {
      size_t k = 0;
      for (size_t i = t->lo; i < t->hi; i++) {
        if (t->infinity[i]) {
          memset(&t->table[i * w + j], 0, sizeof(P(aff)));
          continue;
        }
        P(jac) p;
        memcpy(&p.x, &t->table[i * w + j - 1].x, sizeof(FE));
        memcpy(&p.y, &t->table[i * w + j - 1].y, sizeof(FE));
        FE_SET_ONE(p.z);
        for (int d = 0; d < t->c; d++) P(dbl)(&p, &p);
        jac[k] = p;
        which[k++] = i;
      }
      P(normalize)(aff, jac, k, prefix);
      for (size_t e = 0; e < k; e++) t->table[which[e] * w + j] = aff[e];
    }
  }
  free(jac);
  free(aff);
  free(prefix);
  free(which);
  return NULL;
}

/* Builds the n x windows table of `bases` on `threads` threads; NULL when out of memory. */
static P(aff) * P(build_table)(const P(aff) * bases, const unsigned char *infinity, size_t n, int windows, int c,
                               int threads) {
  P(aff) *table = malloc((n ? n : 1) * (size_t)windows * sizeof(P(aff)));
  if (!table) return NULL;
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  P(table_task) tasks[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  size_t per = (n + (size_t)threads - 1) / (size_t)threads;
  for (int k = 0; k < threads; k++) {
    size_t lo = per * (size_t)k < n ? per * (size_t)k : n;
    size_t hi = lo + per < n ? lo + per : n;
    tasks[k] = (P(table_task)){bases, infinity, table, lo, hi, windows, c, 0};
  }
  for (int k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, P(table_worker), &tasks[k]) == 0;
  P(table_worker)(&tasks[0]);
  int failed = tasks[0].failed;
  for (int k = 1; k < threads; k++) {
    if (started[k]) {
      pthread_join(ids[k], NULL);
      failed |= tasks[k].failed;
    } else {
      failed = 1;
    }
  }
  if (failed) {
    free(table);
    return NULL;
  }
  return table;
}

typedef struct {
  const P(aff) * table;
  const int16_t *digits;
  size_t lo, hi;
  int windows, c;
  P(jac) result;
  int failed;
} P(table_msm_task);

/* One bucket pass over points lo..hi of the table, all windows into the same 2^(c-1) buckets. */
static void *P(table_msm_worker)(void *arg) {
  P(table_msm_task) *t = arg;
  size_t nb = (size_t)1 << (t->c - 1), w = (size_t)t->windows;
  P(set_inf)(&t->result);
  P(acc) acc;
  if (P(acc_init)(&acc, nb) != 0) {
    t->failed = 1;
    return NULL;
  }
  for (size_t i = t->lo; i < t->hi; i++) {
    const int16_t *d = t->digits + i * w;
    const P(aff) *row = t->table + i * w;
    for (size_t j = 0; j < w; j++) {
      int v = d[j];
      if (v > 0) {
        P(acc_add)(&acc, (size_t)(v - 1), &row[j], 0);
      } else if (v < 0) {
        P(acc_add)(&acc, (size_t)(-v - 1), &row[j], 1);
      }
    }
  }
  P(acc_flush)(&acc);
  P(acc_reduce)(&t->result, &acc, 0, nb);
  P(acc_free)(&acc);
  return NULL;
}

static int P(table_msm)(P(jac) * out, const P(aff) * table, const int16_t *digits, size_t n, int windows, int c,
                        int threads) {
  P(set_inf)(out);
  if (n == 0) return 0;
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  P(table_msm_task) tasks[MAX_THREADS];
  pthread_t ids[MAX_THREADS];
  int started[MAX_THREADS] = {0};
  size_t per = (n + (size_t)threads - 1) / (size_t)threads;
  for (int k = 0; k < threads; k++) {
    size_t lo = per * (size_t)k < n ? per * (size_t)k : n;
    size_t hi = lo + per < n ? lo + per : n;
    tasks[k] = (P(table_msm_task)){.table = table, .digits = digits, .lo = lo, .hi = hi, .windows = windows, .c = c};
  }
  for (int k = 1; k < threads; k++) started[k] = pthread_create(&ids[k], NULL, P(table_msm_worker), &tasks[k]) == 0;
  P(table_msm_worker)(&tasks[0]);
  int failed = tasks[0].failed;
  for (int k = 1; k < threads; k++) {
    if (started[k]) {
      pthread_join(ids[k], NULL);
      failed |= tasks[k].failed;
    } else {
      failed = 1;
    }
  }
  if (failed) return -1;
  for (int k = 0; k < threads; k++) P(add)(out, out, &tasks[k].result);
  return 0;
}
