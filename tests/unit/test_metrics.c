/*
 * test_metrics.c -- the metrics registry and its HTTP server: names checked,
 * counters exact under concurrent updates, the Prometheus text format,
 * histograms with a label (buckets, sum, count, a bounded set of series),
 * collectors called at each rendering and never after removal, liveness
 * lost when the heartbeat stops, readiness following its dependencies, and
 * /metrics, /healthz, /readyz, 404 and 405 over real HTTP.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "convdiag/buf.h"
#include "convdiag/metrics.h"

static void test_names(void **state)
{
    (void)state;
    cd_metrics_t *m = cd_metrics_new(1000);

    assert_non_null(cd_metrics_add(m, CD_METRIC_COUNTER, "a_total", "h"));
    assert_null(cd_metrics_add(m, CD_METRIC_COUNTER, "a_total", "taken"));
    assert_null(cd_metrics_add(m, CD_METRIC_GAUGE, "1abc", "starts with a digit"));
    assert_null(cd_metrics_add(m, CD_METRIC_GAUGE, "a-b", "dash"));
    assert_null(cd_metrics_add(m, CD_METRIC_GAUGE, "", "empty"));
    assert_null(cd_metrics_add(NULL, CD_METRIC_GAUGE, "x", "no registry"));
    /* Updates of a metric not registered do nothing. */
    cd_metric_add(NULL, 1);
    cd_metric_set(NULL, 1);
    cd_metrics_free(m);
}

#define THREADS 4
#define ADDS 100000

static void *adder(void *arg)
{
    for (int i = 0; i < ADDS; i++)
        cd_metric_add(arg, 1);
    return NULL;
}

static void test_render(void **state)
{
    (void)state;
    cd_metrics_t *m = cd_metrics_new(1000);
    cd_metric_t *c = cd_metrics_add(m, CD_METRIC_COUNTER, "things_total", "Things, with a \\ and\na newline.");
    cd_metric_t *g = cd_metrics_add(m, CD_METRIC_GAUGE, "level", "A level.");
    pthread_t t[THREADS];
    cd_buf_t out;

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, adder, c), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cd_metric_set(g, 0.25);
    cd_buf_init(&out);
    cd_metrics_render(m, &out);
    assert_string_equal(out.data, "# HELP things_total Things, with a \\\\ and\\na newline.\n"
                                  "# TYPE things_total counter\n"
                                  "things_total 400000\n"
                                  "# HELP level A level.\n"
                                  "# TYPE level gauge\n"
                                  "level 0.25\n");
    cd_buf_fini(&out);
    cd_metrics_free(m);
}

typedef struct observer {
    cd_histogram_t *h;
    const char *value;
} observer_t;

static void *observe_many(void *arg)
{
    const observer_t *o = arg;
    for (int i = 0; i < ADDS; i++)
        cd_histogram_observe(o->h, o->value, 0.5);
    return NULL;
}

static void test_histogram(void **state)
{
    (void)state;
    cd_metrics_t *m = cd_metrics_new(1000);
    static const double bounds[] = {0.125, 1};
    static const double descending[] = {1, 0.125};
    cd_buf_t out;

    assert_null(cd_metrics_add_histogram(m, "bad_seconds", "h", "code", descending, 2));
    assert_null(cd_metrics_add_histogram(m, "bad_seconds", "h", "code", bounds, 0));
    assert_null(cd_metrics_add_histogram(m, "bad_seconds", "h", "a-b", bounds, 2));
    cd_histogram_t *h = cd_metrics_add_histogram(m, "t_seconds", "Help.", "code", bounds, 2);
    assert_non_null(h);
    assert_null(cd_metrics_add_histogram(m, "t_seconds", "taken", "code", bounds, 2));
    assert_null(cd_metrics_add(m, CD_METRIC_GAUGE, "t_seconds", "taken by the histogram"));
    cd_histogram_observe(NULL, "200", 1); /* not registered: nothing */
    /* Upper bounds are inclusive; values chosen to sum exactly in binary. */
    cd_histogram_observe(h, "200", 0.0625);
    cd_histogram_observe(h, "200", 0.125);
    cd_histogram_observe(h, "200", 0.5);
    cd_histogram_observe(h, "200", 3);
    cd_histogram_observe(h, "none", 2);
    cd_buf_init(&out);
    cd_metrics_render(m, &out);
    assert_string_equal(out.data, "# HELP t_seconds Help.\n"
                                  "# TYPE t_seconds histogram\n"
                                  "t_seconds_bucket{code=\"200\",le=\"0.125\"} 2\n"
                                  "t_seconds_bucket{code=\"200\",le=\"1\"} 3\n"
                                  "t_seconds_bucket{code=\"200\",le=\"+Inf\"} 4\n"
                                  "t_seconds_sum{code=\"200\"} 3.6875\n"
                                  "t_seconds_count{code=\"200\"} 4\n"
                                  "t_seconds_bucket{code=\"none\",le=\"0.125\"} 0\n"
                                  "t_seconds_bucket{code=\"none\",le=\"1\"} 0\n"
                                  "t_seconds_bucket{code=\"none\",le=\"+Inf\"} 1\n"
                                  "t_seconds_sum{code=\"none\"} 2\n"
                                  "t_seconds_count{code=\"none\"} 1\n");
    cd_buf_fini(&out);

    /* Concurrent observers of new and old values: every observation counted. */
    observer_t o[THREADS] = {{h, "200"}, {h, "503"}, {h, "503"}, {h, "429"}};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, observe_many, &o[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    cd_buf_init(&out);
    cd_metrics_render(m, &out);
    assert_non_null(strstr(out.data, "t_seconds_count{code=\"200\"} 100004\n"));
    assert_non_null(strstr(out.data, "t_seconds_count{code=\"503\"} 200000\n"));
    assert_non_null(strstr(out.data, "t_seconds_count{code=\"429\"} 100000\n"));
    cd_buf_fini(&out);

    /* Past CD_HISTOGRAM_MAX_SERIES values, the later ones share "other". */
    char value[16];
    for (int i = 0; i < CD_HISTOGRAM_MAX_SERIES + 4; i++) {
        snprintf(value, sizeof(value), "v%d", i);
        cd_histogram_observe(h, value, 0.5);
    }
    cd_buf_init(&out);
    cd_metrics_render(m, &out);
    int series = 0;
    for (const char *p = out.data; (p = strstr(p, "t_seconds_count{")); p++)
        series++;
    assert_int_equal(series, CD_HISTOGRAM_MAX_SERIES);
    /* 4 series before, so v0..v10 fill 11 more and the 16th is "other". */
    assert_non_null(strstr(out.data, "t_seconds_count{code=\"v10\"} 1\n"));
    assert_null(strstr(out.data, "code=\"v11\""));
    assert_non_null(strstr(out.data, "t_seconds_count{code=\"other\"} 9\n"));
    cd_buf_fini(&out);
    /* A value longer than kept is one series, cut: it adds nothing new past the limit. */
    cd_histogram_t *g = cd_metrics_add_histogram(m, "u_seconds", "Help.", "code", bounds, 2);
    for (int i = 0; i < 3; i++)
        cd_histogram_observe(g, "a-status-text-far-longer-than-thirty-one-bytes", 0.5);
    cd_buf_init(&out);
    cd_metrics_render(m, &out);
    assert_non_null(strstr(out.data, "u_seconds_count{code=\"a-status-text-far-longer-than-t\"} 3\n"));
    cd_buf_fini(&out);
    cd_metrics_free(m);
}

static int collected;

static void collect(void *arg)
{
    collected++;
    cd_metric_set(arg, collected * 10);
}

static void test_collectors(void **state)
{
    (void)state;
    cd_metrics_t *m = cd_metrics_new(1000);
    cd_metric_t *c = cd_metrics_add(m, CD_METRIC_COUNTER, "kept_elsewhere_total", "h");
    cd_buf_t out;

    collected = 0;
    assert_true(cd_metrics_add_collector(m, collect, c));
    cd_buf_init(&out);
    cd_metrics_render(m, &out);
    assert_non_null(strstr(out.data, "\nkept_elsewhere_total 10\n"));
    cd_metrics_remove_collector(m, collect, c);
    cd_buf_reset(&out);
    cd_metrics_render(m, &out);
    assert_int_equal(collected, 1);
    assert_non_null(strstr(out.data, "\nkept_elsewhere_total 10\n"));
    cd_buf_fini(&out);
    cd_metrics_free(m);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_health(void **state)
{
    (void)state;
    cd_metrics_t *m = cd_metrics_new(100);
    cd_buf_t out;

    cd_buf_init(&out);
    assert_true(cd_metrics_alive(m, &out)); /* starting counts as a beat */
    sleep_ms(150);
    cd_buf_reset(&out);
    assert_false(cd_metrics_alive(m, &out));
    assert_non_null(strstr(out.data, "\"status\": \"stalled\""));
    cd_metrics_heartbeat(m);
    cd_buf_reset(&out);
    assert_true(cd_metrics_alive(m, &out));

    cd_buf_reset(&out);
    assert_false(cd_metrics_ready(m, &out)); /* nothing reported yet */
    assert_string_equal(out.data, "{\"status\": \"starting\", \"dependencies\": {}}\n");
    cd_metrics_set_ready(m, "postgres", true, NULL);
    cd_metrics_set_ready(m, "kafka", false, "not \"created\"");
    cd_buf_reset(&out);
    assert_false(cd_metrics_ready(m, &out));
    assert_string_equal(out.data, "{\"status\": \"not ready\", \"dependencies\": {\"postgres\": "
                                  "{\"up\": true}, \"kafka\": {\"up\": false, \"why\": \"not "
                                  "\\\"created\\\"\"}}}\n");
    cd_metrics_set_ready(m, "kafka", true, NULL);
    cd_buf_reset(&out);
    assert_true(cd_metrics_ready(m, &out));
    cd_buf_fini(&out);
    cd_metrics_free(m);
}

static size_t gather(char *p, size_t size, size_t n, void *arg)
{
    cd_buf_append(arg, p, size * n);
    return size * n;
}

/* The status of METHOD url, its body into body. */
static long fetch(const char *method, const char *url, cd_buf_t *body)
{
    CURL *h = curl_easy_init();
    long status = 0;

    cd_buf_reset(body);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, gather);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(h);
    return status;
}

static void test_server(void **state)
{
    (void)state;
    cd_metrics_t *m = cd_metrics_new(60000);
    cd_metric_t *c = cd_metrics_add(m, CD_METRIC_COUNTER, "served_total", "h");
    char url[160];
    cd_buf_t body;
    cd_err_t err;

    cd_metric_add(c, 7);
    cd_metrics_server_t *s = cd_metrics_server_start(m, "127.0.0.1:0", &err);
    assert_non_null(s);
    assert_null(cd_metrics_server_start(m, "nowhere", &err));
    assert_string_equal(err.msg, "metrics.listen: 'nowhere' is not HOST:PORT");
    cd_buf_init(&body);

    snprintf(url, sizeof(url), "http://%s/metrics", cd_metrics_server_address(s));
    assert_int_equal(fetch("GET", url, &body), 200);
    assert_non_null(strstr(body.data, "\nserved_total 7\n"));
    snprintf(url, sizeof(url), "http://%s/healthz", cd_metrics_server_address(s));
    assert_int_equal(fetch("GET", url, &body), 200);
    snprintf(url, sizeof(url), "http://%s/readyz", cd_metrics_server_address(s));
    assert_int_equal(fetch("GET", url, &body), 503);
    cd_metrics_set_ready(m, "postgres", true, NULL);
    assert_int_equal(fetch("GET", url, &body), 200);
    assert_int_equal(fetch("POST", url, &body), 405);
    snprintf(url, sizeof(url), "http://%s/other", cd_metrics_server_address(s));
    assert_int_equal(fetch("GET", url, &body), 404);

    cd_buf_fini(&body);
    cd_metrics_server_stop(s);
    cd_metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),       cmocka_unit_test(test_render),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_collectors),  cmocka_unit_test(test_health),
        cmocka_unit_test(test_server),
    };
    curl_global_init(CURL_GLOBAL_ALL);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
