// Secrets of keeper identities (docs/security.md, "Keeper identity"): random
// passwords from the server's strong random source, and the SCRAM verifier that
// CREATE ROLE stores, so the plain password never appears in a statement the
// server could log. Plain C-style code: nothing here has a destructor.
#include "monitor_ext/pg_include.h"

// From libpq/scram.h, whose includes need the GSSAPI headers; the declaration
// is the same in every PostgreSQL 15 minor release.
extern "C" char* pg_be_scram_build_secret(const char* password);

namespace {

// 24 bytes = 192 bits: far beyond guessing, and 48 hex characters need no
// quoting in a pgpass file or a conninfo.
constexpr int kSecretBytes = 24;

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(autofailover_random_secret);
PG_FUNCTION_INFO_V1(autofailover_scram_verifier);

// _random_secret() → 48 lowercase hex characters.
PGDLLEXPORT Datum autofailover_random_secret(PG_FUNCTION_ARGS) {
    (void)fcinfo;
    unsigned char bytes[kSecretBytes];
    if (!pg_strong_random(bytes, sizeof bytes))
        ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("autofailover: could not generate a random secret")));
    static const char digits[] = "0123456789abcdef";
    char hex[2 * kSecretBytes + 1];
    for (int i = 0; i < kSecretBytes; ++i) {
        hex[2 * i] = digits[bytes[i] >> 4];
        hex[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    hex[2 * kSecretBytes] = '\0';
    PG_RETURN_TEXT_P(cstring_to_text(hex));
}

// _scram_verifier(password) → the SCRAM-SHA-256 secret to store with CREATE ROLE ... PASSWORD.
PGDLLEXPORT Datum autofailover_scram_verifier(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("password must not be NULL")));
    char* password = text_to_cstring(PG_GETARG_TEXT_PP(0));
    char* verifier = pg_be_scram_build_secret(password);
    // The plain password leaves this backend's memory as soon as it is not needed.
    explicit_bzero(password, strlen(password));
    PG_RETURN_TEXT_P(cstring_to_text(verifier));
}

}  // extern "C"
