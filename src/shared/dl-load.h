/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Libraries that only some machines need (netlink for private networks, nftables for port
 * forwards, cryptsetup for verity), loaded when first used rather than at every start: each costs
 * the dynamic loader a millisecond or more of every berth and berthctl start, with its own
 * dependencies (cryptsetup brings OpenSSL, device-mapper, argon2 and json-c), and a plain
 * `berth -D TREE CMD` uses none of them.
 *
 * The users keep calling the library's functions by their own names through a pointer each:
 *
 *     #define NFT_SYMBOLS(X) X(nft_ctx_new) X(nft_ctx_free) ...
 *     NFT_SYMBOLS(DL_DECLARE)                          -> static typeof(nft_ctx_new) *sym_nft_ctx_new; ...
 *     static const DlSymbol nft_symbols[] = { NFT_SYMBOLS(DL_ENTRY) };
 *     r = dl_load(&handle, "libnftables.so.1", nft_symbols, ELEMENTSOF(nft_symbols), &error);
 *
 * Trust: a library is loaded by the dynamic loader's search path of the process that asks, so
 * only the monitor (and berthctl) ask, in the host's mount namespace, before or beside the
 * container, never a process whose root is the container's tree; dl_load() refuses (-EPERM) when
 * the root directory is not the one the program started with. */

#include <stddef.h>

typedef struct DlSymbol {
        const char *name;
        void **fn;
} DlSymbol;

#define DL_DECLARE(f) static typeof(f) *sym_##f;
#define DL_ENTRY(f) { #f, (void **) &sym_##f },

/* Loads SONAME once (*HANDLE remembers it: a second call returns 0 at once) and resolves each of
 * SYMBOLS. All or nothing: on failure the library is closed again, no pointer is left set, and
 * *RET_ERROR (static, until the next call) says why in the dynamic loader's words. -EPERM: our
 * root directory changed since the start (see above), -EOPNOTSUPP: no such library or symbol.
 * Doesn't log. */
int dl_load(void **handle, const char *soname, const DlSymbol *symbols, size_t n, const char **ret_error);
