/* orbit-leaf: parse the command line and run the leaf agent. */
#include <stdio.h>

#include "leaf_agent.h"
#include "leaf_config.h"
#include "orbit_cli.h"
#include "orbit_err.h"
#include "orbit_log.h"

int main(int argc, char **argv)
{
    orbit_leaf_config_t cfg;
    char err[512];
    int status = 0;
    int rc = orbit_leaf_config_parse(argc, argv, &cfg, err, sizeof err);
    if (rc != ORBIT_OK) {
        orbit_leaf_config_close(&cfg);
        orbit_cli_die("orbit-leaf", err[0] ? err : orbit_strerror(rc));
    }
    if (cfg.help || cfg.version) { /* printed by the parser */
        orbit_leaf_config_close(&cfg);
        return 0;
    }
    zsys_set_logident("orbit-leaf");
    zsys_set_logstream(stderr);
    orbit_log_level = cfg.log_level;

    orbit_leaf_agent_t *agent = orbit_leaf_agent_new(&cfg, err, sizeof err);
    orbit_leaf_config_close(&cfg);
    if (!agent) {
        fprintf(stderr, "orbit-leaf: %s\n", err);
        return 1;
    }
    if (orbit_leaf_agent_run(agent, NULL) != ORBIT_OK)
        status = 1;
    orbit_leaf_agent_destroy(&agent);
    return status;
}
