/* N-API helpers shared by the addon's parts (declared in internal.h). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

napi_value rb_throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return NULL;
}

napi_value rb_throw_range(napi_env env, const char* msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return NULL;
}

napi_value rb_throw_errno(napi_env env, const char* what, int err) {
  char msg[256];
  const char* name = strerrorname_np(err);
  char codebuf[16];
  if (name == NULL) {
    snprintf(codebuf, sizeof codebuf, "E%d", err);
    name = codebuf;
  }
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), name);
  napi_value jmsg, jcode, jerr, jerrno;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
      napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &jcode) != napi_ok ||
      napi_create_error(env, jcode, jmsg, &jerr) != napi_ok) {
    napi_throw_error(env, NULL, msg);
    return NULL;
  }
  if (napi_create_int32(env, err, &jerrno) == napi_ok)
    napi_set_named_property(env, jerr, "errno", jerrno);
  napi_throw(env, jerr);
  return NULL;
}

int rb_get_int(napi_env env, napi_value v, const char* name, int64_t min, int64_t max,
                       int64_t* out) {
  char msg[160];
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) {
    snprintf(msg, sizeof msg, "%s must be a number", name);
    rb_throw_type(env, msg);
    return -1;
  }
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return -1;
  if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max) {
    snprintf(msg, sizeof msg, "%s must be an integer in [%lld, %lld], got %g", name,
             (long long)min, (long long)max, d);
    rb_throw_range(env, msg);
    return -1;
  }
  *out = (int64_t)d;
  return 0;
}
