#include "command.hpp"

namespace hutch::cli {

std::unique_ptr<Command> make_images_command();
std::unique_ptr<Command> make_diff_command();
std::unique_ptr<Command> make_commit_command();
std::unique_ptr<Command> make_mount_command();
std::unique_ptr<Command> make_unmount_command();
std::unique_ptr<Command> make_system_df_command();
std::unique_ptr<Command> make_system_prune_command();
std::unique_ptr<Command> make_system_check_command();
std::unique_ptr<Command> make_image_prune_command();
std::unique_ptr<Command> make_volume_group_command();
std::unique_ptr<Command> make_volume_create_command();
std::unique_ptr<Command> make_volume_ls_command();
std::unique_ptr<Command> make_volume_inspect_command();
std::unique_ptr<Command> make_volume_rm_command();
std::unique_ptr<Command> make_volume_prune_command();
std::unique_ptr<Command> make_import_command();
std::unique_ptr<Command> make_info_command();
std::unique_ptr<Command> make_inspect_command();
std::unique_ptr<Command> make_ps_command();
std::unique_ptr<Command> make_rm_command();
std::unique_ptr<Command> make_rmi_command();
std::unique_ptr<Command> make_run_command();
std::unique_ptr<Command> make_tag_command();
std::unique_ptr<Command> make_unshare_command();
std::unique_ptr<Command> make_version_command();
std::unique_ptr<Command> make_create_command();
std::unique_ptr<Command> make_stats_command();
std::unique_ptr<Command> make_start_command();
std::unique_ptr<Command> make_stop_command();
std::unique_ptr<Command> make_restart_command();
std::unique_ptr<Command> make_kill_command();
std::unique_ptr<Command> make_wait_command();
std::unique_ptr<Command> make_attach_command();
std::unique_ptr<Command> make_exec_command();
std::unique_ptr<Command> make_logs_command();
std::unique_ptr<Command> make_rename_command();
std::unique_ptr<Command> make_top_command();
std::unique_ptr<Command> make_pause_command();
std::unique_ptr<Command> make_unpause_command();
std::unique_ptr<Command> make_port_command();
std::unique_ptr<Command> make_healthcheck_run_command();
std::unique_ptr<Command> make_container_prune_command();
std::unique_ptr<Command> make_cp_command();

std::vector<std::unique_ptr<Command>> make_all_commands() {
  std::vector<std::unique_ptr<Command>> c;
  c.push_back(make_images_command());
  c.push_back(make_import_command());
  c.push_back(make_info_command());
  c.push_back(make_inspect_command());
  c.push_back(make_ps_command());
  c.push_back(make_rm_command());
  c.push_back(make_rmi_command());
  c.push_back(make_run_command());
  c.push_back(make_tag_command());
  c.push_back(make_unshare_command());
  c.push_back(make_version_command());
  c.push_back(make_diff_command());
  c.push_back(make_commit_command());
  c.push_back(make_mount_command());
  c.push_back(make_unmount_command());
  c.push_back(make_system_df_command());
  c.push_back(make_system_prune_command());
  c.push_back(make_system_check_command());
  c.push_back(make_image_prune_command());
  c.push_back(make_volume_group_command());
  c.push_back(make_volume_create_command());
  c.push_back(make_volume_ls_command());
  c.push_back(make_volume_inspect_command());
  c.push_back(make_volume_rm_command());
  c.push_back(make_volume_prune_command());
  c.push_back(make_create_command());
  c.push_back(make_stats_command());
  c.push_back(make_start_command());
  c.push_back(make_stop_command());
  c.push_back(make_restart_command());
  c.push_back(make_kill_command());
  c.push_back(make_wait_command());
  c.push_back(make_attach_command());
  c.push_back(make_exec_command());
  c.push_back(make_logs_command());
  c.push_back(make_rename_command());
  c.push_back(make_top_command());
  c.push_back(make_pause_command());
  c.push_back(make_unpause_command());
  c.push_back(make_port_command());
  c.push_back(make_healthcheck_run_command());
  c.push_back(make_container_prune_command());
  c.push_back(make_cp_command());
  return c;
}

}  // namespace hutch::cli
