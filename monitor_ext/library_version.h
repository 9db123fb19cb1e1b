// The version of this library (from autofailover.control at build time) against
// the version of the installed SQL objects (pg_extension.extversion): a monitor
// whose library was upgraded without ALTER EXTENSION UPDATE, or the reverse, would
// run C code against tables and functions it was not written for.
#pragma once

namespace autofailover_ext {

// The version this library was built for, e.g. "1.0".
const char* library_version();
// ERROR (55000) when the installed extension's version differs from the library's.
// Called at the start of every SQL-callable C function that reads or writes the
// tables, before any C++ object lives in the frame.
void check_library_version();

}  // namespace autofailover_ext
