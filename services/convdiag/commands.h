/* commands.h -- the subcommands of the convdiag binary, each in cmd_<name>.c. */
#ifndef CONVDIAG_COMMANDS_H
#define CONVDIAG_COMMANDS_H

int cmd_run(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_migrate(int argc, char **argv);
int cmd_simulate(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_history(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_dead_letters(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif
