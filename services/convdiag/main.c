/* main.c -- the convdiag binary: dispatches to a subcommand. */
#include <stdio.h>
#include <string.h>

#include "convdiag/json_arena.h"

#include "cli.h"
#include "commands.h"

static const struct command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"run", cmd_run, "consume events from Kafka and store them in PostgreSQL"},
    {"export", cmd_export, "send stored events to Application Insights (also part of run)"},
    {"migrate", cmd_migrate, "create or upgrade the PostgreSQL schema"},
    {"simulate", cmd_simulate, "produce realistic sample conversations to Kafka"},
    {"history", cmd_history, "a conversation's timeline, as the Traces table shows it"},
    {"stats", cmd_stats, "summaries for analysts: durations, failures, abandonment, ..."},
    {"dead-letters", cmd_dead_letters, "list, show and replay the messages that were not events"},
    {"check", cmd_check, "validate and tag events from stdin, without Kafka or PostgreSQL"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *out)
{
    fprintf(out, "Usage: convdiag COMMAND [OPTIONS]\n\n"
                 "Conversation diagnostics: contact-center lifecycle events from Kafka,\n"
                 "validated, tagged and stored in PostgreSQL.\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'convdiag COMMAND --help' for a command's options.\n"
                 "Exit codes: 0 success, 1 failure, 2 bad usage or configuration.\n");
}

int main(int argc, char **argv)
{
    /* Before any thread starts: batches parse their events into arenas. */
    cd_json_arena_install();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "help") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0)
        name = "version";
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "convdiag: unknown command '%s'\nTry 'convdiag --help'.\n", name);
    return CLI_EXIT_USAGE;
}
