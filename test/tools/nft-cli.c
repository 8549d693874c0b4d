/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* berth-test-nft WORDS...: runs one nft command ("list ruleset", "list table inet T") with
 * libnftables and prints what nft would. For the systemd test host, whose Debian tree has
 * libnftables (berth links it) but not the nft command; the tests read rulesets there with it. */
#include <nftables/libnftables.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
        char cmd[4096] = "";
        struct nft_ctx *ctx;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strlen(cmd) + strlen(argv[i]) + 2 > sizeof cmd) {
                        fprintf(stderr, "berth-test-nft: command too long\n");
                        return 2;
                }
                if (i > 1)
                        strcat(cmd, " ");
                strcat(cmd, argv[i]);
        }
        ctx = nft_ctx_new(NFT_CTX_DEFAULT);
        if (!ctx) {
                fprintf(stderr, "berth-test-nft: out of memory\n");
                return 2;
        }
        r = nft_run_cmd_from_buffer(ctx, cmd);
        nft_ctx_free(ctx);
        return r == 0 ? 0 : 1;
}
