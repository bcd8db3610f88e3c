/* SPDX-License-Identifier: MIT
 * Remote providers (openai, azure, kyozon, anthropic, bedrock): each
 * attempt is one HTTP call through the shared kz_upstream client, decoded
 * by its dialect into the internal event stream (see provider.h and the
 * comment at the top of remote.c for how attempts end).
 *
 * The provider keeps pointers to cfg and up: both must outlive it.
 */
#ifndef KZ_REMOTE_H
#define KZ_REMOTE_H

#include "router/provider.h"
#include "router/upstream.h"

kz_status kz_remote_new(const struct kz_cfg_provider *cfg, struct kz_upstream *up, struct kz_provider **out,
                        struct kz_err *err);

#endif
