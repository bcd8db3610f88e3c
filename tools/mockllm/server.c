/* SPDX-License-Identifier: MIT
 * The listening socket and the process's life: bind (loopback only, checked
 * by the caller), accept, and a clean stop on SIGINT / SIGTERM so that a
 * test's kill(pid, SIGTERM) ends mockllm with status 0.
 */
#include <string.h>

#include "mock.h"

static void on_connection(uv_stream_t *listener, int status)
{
    if (status == 0)
        kz_mock_conn_accept(listener->data);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    kz_mock_server_stop(h->data);
}

kz_status kz_mock_server_start(struct kz_mock_server *srv, uv_loop_t *loop, const char *host, int port,
                               int *bound_port, struct kz_err *err)
{
    struct kz_mock_settings cur = srv->cur, start = srv->start;
    memset(srv, 0, sizeof *srv);
    srv->cur = cur;
    srv->start = start;
    srv->loop = loop;
    srv->by_path = json_object();
    if (!srv->by_path)
        return kz_err_set(err, KZ_ENOMEM, "out of memory");
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(host, port, &addr);
    if (rc != 0)
        return kz_err_set(err, KZ_EINVAL, "bad host '%s': %s", host, uv_strerror(rc));
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    if ((rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection)) != 0) {
        uv_close((uv_handle_t *)&srv->listener, NULL);
        return kz_err_set(err, KZ_EIO, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
    }
    struct sockaddr_storage bound;
    int len = (int)sizeof bound;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &len);
    *bound_port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_signal_init(loop, &srv->sig_int);
    uv_signal_init(loop, &srv->sig_term);
    srv->sig_int.data = srv->sig_term.data = srv;
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    return KZ_OK;
}

void kz_mock_server_stop(struct kz_mock_server *srv)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_close((uv_handle_t *)&srv->sig_int, NULL);
    uv_close((uv_handle_t *)&srv->sig_term, NULL);
    kz_mock_conn_close_all(srv);
}

void kz_mock_server_free(struct kz_mock_server *srv)
{
    json_decref(srv->by_path);
    json_decref(srv->last);
    srv->by_path = srv->last = NULL;
}
