// ffnvcodec's run-time loader for libcuda and libnvidia-encode, included one way everywhere:
// its failures are reported by us (with dlerror()'s words), not printed to stderr.
#pragma once

#define FFNV_LOG_FUNC(logctx, msg, ...) ((void)(logctx))
#define FFNV_DEBUG_LOG_FUNC(logctx, msg, ...) ((void)(logctx))
#include <ffnvcodec/dynlink_loader.h>
