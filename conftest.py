pytest_plugins = ["taskmesh_common.testing.plugin"]
