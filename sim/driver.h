/* The simulator's driver (sim/driver.c): one seed's run picks a workload
 * and runs it. The workloads' entry points; what they use of the run is
 * sim/harness.h. */
#ifndef RLG_SIM_DRIVER_H
#define RLG_SIM_DRIVER_H

#include "sim/harness.h"

/* The workloads (sim/log_workload.c, sim/raft_workload.c,
 * sim/ship_workload.c, sim/ship_raft.c). */
void rlg_sim_log_workload(rlg_sim *s);
void rlg_sim_raft_workload(rlg_sim *s);
void rlg_sim_ship_workload(rlg_sim *s);
void rlg_sim_ship_raft_workload(rlg_sim *s);

#endif /* RLG_SIM_DRIVER_H */
