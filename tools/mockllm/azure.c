/* SPDX-License-Identifier: MIT
 * The Azure OpenAI dialect: /openai/deployments/{deployment}/{chat/completions,
 * completions, embeddings}?api-version=V. Azure checks the key (the
 * `api-key` header) and the api-version query before anything else, and
 * answers those failures in its own error shape; past them the answer is
 * OpenAI's with the deployment name as the model.
 */
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define PREFIX "/openai/deployments/"

struct kz_mock_script *kz_mock_azure(const struct kz_mock_ctx *c)
{
    const char *path = c->req->path;
    if (!kz_mock_req_header(c->req, "api-key"))
        return kz_mock_error(c, KZ_MOCK_D_AZURE, 401,
                             "Access denied due to a missing subscription key: send it in the api-key header");
    char version[64];
    if (!kz_mock_req_query(c->req, "api-version", version, sizeof version) || !version[0])
        return kz_mock_error(c, KZ_MOCK_D_AZURE, 400, "Missing required query parameter: api-version");
    const char *dep = strncmp(path, PREFIX, strlen(PREFIX)) == 0 ? path + strlen(PREFIX) : NULL;
    const char *slash = dep ? strchr(dep, '/') : NULL;
    if (!slash || slash == dep || strcmp(c->req->method, "POST") != 0)
        return kz_mock_error(c, KZ_MOCK_D_AZURE, 404, "Resource not found");
    char deployment[128];
    snprintf(deployment, sizeof deployment, "%.*s", (int)(slash - dep), dep);
    if (strcmp(slash, "/chat/completions") == 0)
        return kz_mock_openai_text(c, deployment, KZ_MOCK_D_AZURE, 1);
    if (strcmp(slash, "/completions") == 0)
        return kz_mock_openai_text(c, deployment, KZ_MOCK_D_AZURE, 0);
    if (strcmp(slash, "/embeddings") == 0)
        return kz_mock_openai_embeddings(c, deployment, KZ_MOCK_D_AZURE);
    return kz_mock_error(c, KZ_MOCK_D_AZURE, 404, "Resource not found");
}
