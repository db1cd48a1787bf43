/*
 * AEAD_AES_SIV_CMAC_256 (RFC 5297, NTS AEAD 15) on the OpenSSL that Node itself carries.
 *
 * Why not OpenSSL's own "AES-128-SIV" cipher: in OpenSSL 3.0 it cannot authenticate an empty
 * plaintext (EVP_EncryptUpdate returns early for 0 bytes, so EVP_*Final fails and there is no
 * tag), and every NTS request from chrony and NTPsec encrypts exactly that; it also cannot be
 * reused without re-keying (the S2V state is not reset after Final) and duplicates a MAC context
 * per associated-data component. So S2V and CTR are composed here from two plain EVP ciphers,
 * keyed once per key and reused for every message:
 *   - CMAC (RFC 4493) under K1 = the first 16 key bytes, on an AES-128-CBC context that is
 *     never re-initialised: its chaining value (the last ciphertext block, kept in `chain`) is
 *     XOR-ed into the first block of the next message, which restarts CBC at a zero IV;
 *   - CTR under K2 = the last 16 bytes, AES-128-CTR with the IV set to Q for each message.
 *
 * The OpenSSL functions are looked up with dlsym() when the module registers: Node exports its
 * OpenSSL symbols, but a Node built without them must still load the rest of the addon (the
 * AEAD exports are then absent and JavaScript keeps node:crypto). Nothing links libcrypto.
 *
 * Exports (only when OpenSSL was found):
 *   aeadSivCreate(key?: Uint8Array(32)) -> handle      one per long-lived key (or a scratch one)
 *   aeadSivSeal(h, key | null, ad, nonce | null, plaintext, out, outOffset) -> bytes written
 *   aeadSivOpen(h, key | null, ad, nonce | null, ciphertext, out, outOffset) -> length | -1
 *   aeadSivBackend: string                             e.g. "OpenSSL 3.0.19 ..."
 * `key`, when given, re-keys the handle if it differs from the handle's key (a scratch handle
 * serving one-off keys). `ad` is null, one Uint8Array or an array of them (the S2V components
 * before the nonce); the nonce, when given, is the last component (RFC 5297 §3, RFC 8915 §5.6).
 * Seal writes V || C (16 + plaintext bytes) at out[outOffset]; open writes the plaintext there
 * and returns -1, with the output wiped, when the ciphertext is not authentic. The output may
 * coincide exactly with the plaintext/ciphertext (seal: out + 16 == plaintext; open: out ==
 * ciphertext + 16) but must not otherwise overlap any input. No allocation per call.
 */
#include "internal.h"

#include <openssl/opensslv.h>

#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3
/* Headers older than OpenSSL 3 (no EVP_CIPHER_fetch): the addon loads without AES-SIV. */
napi_status rb_aead_register(napi_env env, napi_value exports) { return napi_ok; }
#else

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SIV_BLOCK 16
#define SIV_KEY_LENGTH 32
/* Bytes of a CMAC message encrypted per EVP call (on the stack). */
#define CMAC_CHUNK 1024
/* RFC 5297 §7: S2V takes at most 127 components; the plaintext is one of them. */
#define MAX_AD_COMPONENTS 126
/* Longest message accepted (NTP datagrams are far shorter; keeps EVP's int lengths safe). */
#define MAX_MESSAGE (1 << 20)

/* ------------------------------------------------------------------------------------------ */
/* OpenSSL, resolved at run time from the Node binary.                                        */

static struct {
  __typeof__(&EVP_CIPHER_fetch) cipher_fetch;
  __typeof__(&EVP_CIPHER_CTX_new) ctx_new;
  __typeof__(&EVP_CIPHER_CTX_free) ctx_free;
  __typeof__(&EVP_EncryptInit_ex) encrypt_init;
  __typeof__(&EVP_EncryptUpdate) encrypt_update;
  __typeof__(&EVP_CIPHER_CTX_set_padding) set_padding;
  __typeof__(&CRYPTO_memcmp) memcmp_ct;
  __typeof__(&OPENSSL_cleanse) cleanse;
  __typeof__(&OpenSSL_version) version;
  EVP_CIPHER* cbc;
  EVP_CIPHER* ctr;
  bool ok;
} ossl;

static pthread_once_t ossl_once = PTHREAD_ONCE_INIT;

#define RESOLVE(field, name)                              \
  do {                                                    \
    *(void**)&ossl.field = dlsym(RTLD_DEFAULT, #name);    \
    if (ossl.field == NULL) return;                       \
  } while (0)

static void ossl_init(void) {
  RESOLVE(cipher_fetch, EVP_CIPHER_fetch);
  RESOLVE(ctx_new, EVP_CIPHER_CTX_new);
  RESOLVE(ctx_free, EVP_CIPHER_CTX_free);
  RESOLVE(encrypt_init, EVP_EncryptInit_ex);
  RESOLVE(encrypt_update, EVP_EncryptUpdate);
  RESOLVE(set_padding, EVP_CIPHER_CTX_set_padding);
  RESOLVE(memcmp_ct, CRYPTO_memcmp);
  RESOLVE(cleanse, OPENSSL_cleanse);
  RESOLVE(version, OpenSSL_version);
  /* Fetched once for the process; EVP_CIPHER objects are immutable and shared by threads. */
  ossl.cbc = ossl.cipher_fetch(NULL, "AES-128-CBC", NULL);
  ossl.ctr = ossl.cipher_fetch(NULL, "AES-128-CTR", NULL);
  ossl.ok = ossl.cbc != NULL && ossl.ctr != NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* AES-SIV                                                                                    */

typedef struct {
  EVP_CIPHER_CTX* cbc; /* AES-128-CBC under K1: the CMAC engine */
  EVP_CIPHER_CTX* ctr; /* AES-128-CTR under K2 */
  bool keyed;
  unsigned char key[SIV_KEY_LENGTH];
  unsigned char chain[SIV_BLOCK]; /* CBC chaining value = last ciphertext block */
  unsigned char k1[SIV_BLOCK], k2[SIV_BLOCK]; /* CMAC subkeys */
  unsigned char d0[SIV_BLOCK];                /* CMAC(K1, 0^128): the start of every S2V */
} siv_key;

typedef struct {
  const unsigned char* p;
  size_t n;
} span;

static const unsigned char ZERO_BLOCK[SIV_BLOCK];

/* Doubling in GF(2^128) (RFC 5297 §2.3). */
static void dbl(unsigned char out[SIV_BLOCK], const unsigned char in[SIV_BLOCK]) {
  unsigned char carry = in[0] >> 7;
  for (int i = 0; i < SIV_BLOCK - 1; i++) out[i] = (unsigned char)((in[i] << 1) | (in[i + 1] >> 7));
  out[SIV_BLOCK - 1] = (unsigned char)((in[SIV_BLOCK - 1] << 1) ^ (carry ? 0x87 : 0));
}

static void xor_block(unsigned char* dst, const unsigned char* src) {
  for (int i = 0; i < SIV_BLOCK; i++) dst[i] ^= src[i];
}

/* CBC-encrypts `n` bytes (whole blocks) in place and remembers the chaining value. */
static bool cbc_blocks(siv_key* k, unsigned char* buf, int n) {
  int outl = 0;
  if (ossl.encrypt_update(k->cbc, buf, &outl, buf, n) != 1 || outl != n) return false;
  memcpy(k->chain, buf + n - SIV_BLOCK, SIV_BLOCK);
  return true;
}

/*
 * AES-CMAC (RFC 4493) under K1 of m, with `xend` (if not NULL) XOR-ed into the last 16 bytes of
 * m first (S2V's "xorend", needs len >= 16). The message goes through a stack buffer in chunks.
 */
static bool cmac(siv_key* k, const unsigned char* m, size_t len, const unsigned char* xend,
                 unsigned char out[SIV_BLOCK]) {
  unsigned char buf[CMAC_CHUNK];
  const size_t total = len == 0 ? SIV_BLOCK : (len + SIV_BLOCK - 1) / SIV_BLOCK * SIV_BLOCK;
  const bool complete = len > 0 && len % SIV_BLOCK == 0;
  for (size_t pos = 0; pos < total;) {
    const size_t n = total - pos < CMAC_CHUNK ? total - pos : CMAC_CHUNK;
    const size_t avail = pos < len ? len - pos : 0;
    const size_t c = avail < n ? avail : n;
    memcpy(buf, m + pos, c);
    if (c < n) {
      /* The message ends in this chunk, inside its last block: 10* padding. */
      memset(buf + c, 0, n - c);
      buf[c] = 0x80;
    }
    if (xend != NULL) {
      const size_t from = len - SIV_BLOCK;
      for (size_t i = from > pos ? from : pos; i < pos + c; i++) buf[i - pos] ^= xend[i - from];
    }
    if (pos == 0) xor_block(buf, k->chain); /* restart the chain at a zero IV */
    if (pos + n == total) xor_block(buf + n - SIV_BLOCK, complete ? k->k1 : k->k2);
    if (!cbc_blocks(k, buf, (int)n)) {
      ossl.cleanse(buf, sizeof buf);
      return false;
    }
    pos += n;
  }
  memcpy(out, k->chain, SIV_BLOCK);
  return true;
}

/* S2V (RFC 5297 §2.4) of the components then the final string p. */
static bool s2v(siv_key* k, const span* comps, size_t ncomps, const unsigned char* p, size_t plen,
                unsigned char v[SIV_BLOCK]) {
  unsigned char d[SIV_BLOCK], mac[SIV_BLOCK], t[SIV_BLOCK];
  memcpy(d, k->d0, SIV_BLOCK);
  for (size_t i = 0; i < ncomps; i++) {
    if (!cmac(k, comps[i].p, comps[i].n, NULL, mac)) return false;
    dbl(t, d);
    memcpy(d, t, SIV_BLOCK);
    xor_block(d, mac);
  }
  bool ok;
  if (plen >= SIV_BLOCK) {
    ok = cmac(k, p, plen, d, v);
  } else {
    dbl(t, d);
    for (size_t i = 0; i < plen; i++) t[i] ^= p[i];
    t[plen] ^= 0x80;
    ok = cmac(k, t, SIV_BLOCK, NULL, v);
  }
  ossl.cleanse(d, sizeof d);
  ossl.cleanse(t, sizeof t);
  return ok;
}

/* CTR (RFC 5297 §2.5): out = in XOR keystream from Q = V with bits 63 and 31 cleared. */
static bool ctr_xor(siv_key* k, const unsigned char v[SIV_BLOCK], const unsigned char* in,
                    unsigned char* out, size_t len) {
  if (len == 0) return true;
  unsigned char q[SIV_BLOCK];
  memcpy(q, v, SIV_BLOCK);
  q[8] &= 0x7f;
  q[12] &= 0x7f;
  int outl = 0;
  return ossl.encrypt_init(k->ctr, NULL, NULL, NULL, q) == 1 &&
         ossl.encrypt_update(k->ctr, out, &outl, in, (int)len) == 1 && (size_t)outl == len;
}

static bool siv_set_key(siv_key* k, const unsigned char key[SIV_KEY_LENGTH]) {
  unsigned char l[SIV_BLOCK];
  k->keyed = false;
  memset(k->chain, 0, SIV_BLOCK);
  if (ossl.encrypt_init(k->cbc, NULL, NULL, key, ZERO_BLOCK) != 1 ||
      ossl.encrypt_init(k->ctr, NULL, NULL, key + SIV_BLOCK, ZERO_BLOCK) != 1)
    return false;
  /* L = AES(K1, 0^128): one CBC block from a zero IV; K1' = dbl(L), K2' = dbl(K1'). */
  memset(l, 0, SIV_BLOCK);
  if (!cbc_blocks(k, l, SIV_BLOCK)) return false;
  dbl(k->k1, l);
  dbl(k->k2, k->k1);
  ossl.cleanse(l, sizeof l);
  if (!cmac(k, ZERO_BLOCK, SIV_BLOCK, NULL, k->d0)) return false;
  memcpy(k->key, key, SIV_KEY_LENGTH);
  k->keyed = true;
  return true;
}

static void siv_free(siv_key* k) {
  if (k == NULL) return;
  if (k->cbc) ossl.ctx_free(k->cbc);
  if (k->ctr) ossl.ctx_free(k->ctr);
  ossl.cleanse(k, sizeof *k);
  free(k);
}

static siv_key* siv_new(void) {
  siv_key* k = calloc(1, sizeof *k);
  if (k == NULL) return NULL;
  k->cbc = ossl.ctx_new();
  k->ctr = ossl.ctx_new();
  /* The ciphers are set once here; re-keying passes only the key (no provider re-allocation). */
  if (k->cbc == NULL || k->ctr == NULL || ossl.encrypt_init(k->cbc, ossl.cbc, NULL, NULL, NULL) != 1 ||
      ossl.encrypt_init(k->ctr, ossl.ctr, NULL, NULL, NULL) != 1 || ossl.set_padding(k->cbc, 0) != 1) {
    siv_free(k);
    return NULL;
  }
  return k;
}

/* ------------------------------------------------------------------------------------------ */
/* N-API                                                                                      */

/* Distinguishes our handles from any other external (type confusion would be memory-unsafe). */
static const napi_type_tag SIV_TAG = {0x7a1c5e0d2b3f4a61ULL, 0x9e84c6f1d05b2a37ULL};

static napi_value throw_crypto(napi_env env, siv_key* k) {
  /* Whatever state the contexts are in, the next call starts from a fresh key setup. */
  k->keyed = false;
  napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "AES-SIV: OpenSSL operation failed");
  return NULL;
}

static bool get_bytes(napi_env env, napi_value v, span* out) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL) != napi_ok ||
      type != napi_uint8_array)
    return false;
  out->p = data;
  out->n = length;
  return true;
}

static bool is_nullish(napi_env env, napi_value v) {
  napi_valuetype t;
  return napi_typeof(env, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

static bool overlaps(const unsigned char* a, size_t an, const unsigned char* b, size_t bn) {
  return an > 0 && bn > 0 && a < b + bn && b < a + an;
}

static void siv_finalize(napi_env env, void* data, void* hint) { siv_free(data); }

static siv_key* get_handle(napi_env env, napi_value v) {
  bool tagged = false;
  void* p = NULL;
  if (napi_check_object_type_tag(env, v, &SIV_TAG, &tagged) != napi_ok || !tagged ||
      napi_get_value_external(env, v, &p) != napi_ok || p == NULL) {
    throw_type(env, "not an AES-SIV handle");
    return NULL;
  }
  return p;
}

/* Arguments shared by seal and open, checked and resolved. */
typedef struct {
  siv_key* k;
  span comps[MAX_AD_COMPONENTS + 1];
  size_t ncomps;
  span in;
  unsigned char* out;
  size_t out_room;
} siv_args;

/* Reads (h, key, ad, nonce, input, out, outOffset); returns false with an exception pending. */
static bool read_args(napi_env env, napi_callback_info info, siv_args* a) {
  size_t argc = 7;
  napi_value argv[7];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < 7) return throw_type(env, "expected (handle, key, ad, nonce, input, out, outOffset)"), false;
  if ((a->k = get_handle(env, argv[0])) == NULL) return false;

  if (!is_nullish(env, argv[1])) {
    span key;
    if (!get_bytes(env, argv[1], &key)) return throw_type(env, "key must be a Uint8Array"), false;
    if (key.n != SIV_KEY_LENGTH) return throw_range(env, "AES-SIV-CMAC-256 needs a 32-byte key"), false;
    if (!a->k->keyed || ossl.memcmp_ct(key.p, a->k->key, SIV_KEY_LENGTH) != 0) {
      if (!siv_set_key(a->k, key.p)) return throw_crypto(env, a->k), false;
    }
  }
  if (!a->k->keyed) return throw_range(env, "AES-SIV handle has no key"), false;

  a->ncomps = 0;
  if (!is_nullish(env, argv[2])) {
    bool is_array = false;
    if (napi_is_array(env, argv[2], &is_array) != napi_ok) return false;
    if (is_array) {
      uint32_t n = 0;
      if (napi_get_array_length(env, argv[2], &n) != napi_ok) return false;
      if (n > MAX_AD_COMPONENTS) return throw_range(env, "too many associated-data components"), false;
      for (uint32_t i = 0; i < n; i++) {
        napi_value e;
        if (napi_get_element(env, argv[2], i, &e) != napi_ok) return false;
        if (!get_bytes(env, e, &a->comps[a->ncomps++]))
          return throw_type(env, "associated data must be Uint8Arrays"), false;
      }
    } else if (!get_bytes(env, argv[2], &a->comps[a->ncomps++])) {
      return throw_type(env, "associated data must be a Uint8Array, an array of them or null"), false;
    }
  }
  if (!is_nullish(env, argv[3])) {
    if (!get_bytes(env, argv[3], &a->comps[a->ncomps++])) return throw_type(env, "nonce must be a Uint8Array"), false;
  }
  if (!get_bytes(env, argv[4], &a->in)) return throw_type(env, "input must be a Uint8Array"), false;
  if (a->in.n > MAX_MESSAGE) return throw_range(env, "message too long"), false;

  span out;
  int64_t off;
  if (!get_bytes(env, argv[5], &out)) return throw_type(env, "out must be a Uint8Array"), false;
  if (napi_get_value_int64(env, argv[6], &off) != napi_ok) return throw_type(env, "outOffset must be a number"), false;
  if (off < 0 || (uint64_t)off > out.n) return throw_range(env, "outOffset out of range"), false;
  a->out = (unsigned char*)out.p + off;
  a->out_room = out.n - (size_t)off;
  return true;
}

/* The output may not overlap associated data or nonce at all. */
static bool out_clear_of_comps(const siv_args* a, size_t out_len) {
  for (size_t i = 0; i < a->ncomps; i++)
    if (overlaps(a->out, out_len, a->comps[i].p, a->comps[i].n)) return false;
  return true;
}

static napi_value AeadSivSeal(napi_env env, napi_callback_info info) {
  siv_args a;
  if (!read_args(env, info, &a)) return NULL;
  const size_t out_len = SIV_BLOCK + a.in.n;
  if (a.out_room < out_len) return throw_range(env, "output buffer too small (needs 16 + plaintext bytes)");
  if (!out_clear_of_comps(&a, out_len) ||
      (overlaps(a.out, out_len, a.in.p, a.in.n) && a.out + SIV_BLOCK != a.in.p))
    return throw_range(env, "output overlaps an input");
  unsigned char v[SIV_BLOCK];
  if (!s2v(a.k, a.comps, a.ncomps, a.in.p, a.in.n, v) || !ctr_xor(a.k, v, a.in.p, a.out + SIV_BLOCK, a.in.n))
    return throw_crypto(env, a.k);
  memcpy(a.out, v, SIV_BLOCK);
  napi_value r;
  napi_create_int32(env, (int32_t)out_len, &r);
  return r;
}

static napi_value AeadSivOpen(napi_env env, napi_callback_info info) {
  siv_args a;
  if (!read_args(env, info, &a)) return NULL;
  napi_value r;
  if (a.in.n < SIV_BLOCK) {
    napi_create_int32(env, -1, &r); /* too short to carry a tag: not authentic */
    return r;
  }
  const size_t pt_len = a.in.n - SIV_BLOCK;
  if (a.out_room < pt_len) return throw_range(env, "output buffer too small (needs ciphertext - 16 bytes)");
  if (!out_clear_of_comps(&a, pt_len) ||
      (overlaps(a.out, pt_len, a.in.p, a.in.n) && a.out != a.in.p + SIV_BLOCK))
    return throw_range(env, "output overlaps an input");
  unsigned char v[SIV_BLOCK], t[SIV_BLOCK];
  memcpy(v, a.in.p, SIV_BLOCK);
  if (!ctr_xor(a.k, v, a.in.p + SIV_BLOCK, a.out, pt_len) || !s2v(a.k, a.comps, a.ncomps, a.out, pt_len, t)) {
    ossl.cleanse(a.out, pt_len);
    return throw_crypto(env, a.k);
  }
  int32_t result = (int32_t)pt_len;
  if (ossl.memcmp_ct(t, v, SIV_BLOCK) != 0) {
    ossl.cleanse(a.out, pt_len);
    result = -1;
  }
  napi_create_int32(env, result, &r);
  return r;
}

static napi_value AeadSivCreate(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return NULL;
  span key = {NULL, 0};
  if (argc >= 1 && !is_nullish(env, argv[0])) {
    if (!get_bytes(env, argv[0], &key)) return throw_type(env, "key must be a Uint8Array");
    if (key.n != SIV_KEY_LENGTH) return throw_range(env, "AES-SIV-CMAC-256 needs a 32-byte key");
  }
  siv_key* k = siv_new();
  if (k == NULL) {
    napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "AES-SIV: cannot create OpenSSL contexts");
    return NULL;
  }
  if (key.p != NULL && !siv_set_key(k, key.p)) {
    siv_free(k);
    napi_throw_error(env, "ERR_CRYPTO_OPERATION_FAILED", "AES-SIV: cannot set the key");
    return NULL;
  }
  napi_value h;
  if (napi_create_external(env, k, siv_finalize, NULL, &h) != napi_ok) {
    siv_free(k);
    return NULL;
  }
  if (napi_type_tag_object(env, h, &SIV_TAG) != napi_ok) return NULL; /* freed by the finalizer */
  return h;
}

napi_status rb_aead_register(napi_env env, napi_value exports) {
  pthread_once(&ossl_once, ossl_init);
  /* Without OpenSSL the rest of the addon still loads; JavaScript falls back to node:crypto. */
  if (!ossl.ok) return napi_ok;
  napi_value backend;
  napi_status st = napi_create_string_utf8(env, ossl.version(OPENSSL_VERSION), NAPI_AUTO_LENGTH, &backend);
  if (st != napi_ok) return st;
  napi_property_descriptor props[] = {
      {"aeadSivCreate", NULL, AeadSivCreate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadSivSeal", NULL, AeadSivSeal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadSivOpen", NULL, AeadSivOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"aeadSivBackend", NULL, NULL, NULL, NULL, backend, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}

#endif /* OpenSSL 3 */
