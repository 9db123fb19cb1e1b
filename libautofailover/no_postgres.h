// Included by every header of the pure core: the decision logic must never see
// PostgreSQL server headers (their macros redefine printf, bind, ... and their
// errors longjmp), so mixing them is a build error rather than a latent bug.
#pragma once
#ifdef POSTGRES_H
#error "libautofailover is pure C++: include it before (or without) postgres.h"
#endif
