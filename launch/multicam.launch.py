"""Launch the kp3d multi-camera node, optionally RViz and a bag replay.

    ros2 launch kp3d_ros multicam.launch.py [params_file:=...] [use_sim_time:=true] [rviz:=true] [bag:=DIR]
        [rate:=1.0] [loop:=false] [namespace:=NS] [log_level:=info] [localhost_shm:=true]

Arguments:

* ``params_file``: parameter file of multicam_node (default: the installed config/multicam.yaml);
* ``use_sim_time``: use /clock (set automatically when ``bag`` is given);
* ``rviz``: start RViz with config/multicam.rviz (fixed frame "world", the node's world_frame; its topics
  are relative, so they follow ``namespace``);
* ``bag``: a rosbag2 bag played by ``kp3d replay`` (publishes /clock); the replay first waits until the
  node has subscribed to every image topic of the bag (the node needs 5-11 s to load its model), then
  2 s more for discovery the other way;
* ``rate``: replay speed factor; ``loop``: replay again from the start when the bag ends;
* ``namespace``: namespace of the node and RViz (the node's outputs move to /NS/multicam_node/...);
* ``log_level``: ROS log level of the node, the replay and RViz (debug, info, warn, error, fatal);
* ``localhost_shm``: everything on this host: Fast DDS shared memory for full-size images.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition, LaunchConfigurationNotEquals
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage

# seconds the replay waits for the node's image subscriptions, then for discovery the other way
WAIT_SUBSCRIBERS_S = "120"
DISCOVERY_DELAY_S = "2.0"


def generate_launch_description():
    share = get_package_share_directory("kp3d_ros")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = LaunchConfiguration("use_sim_time")
    rviz = LaunchConfiguration("rviz")
    bag = LaunchConfiguration("bag")
    rate = LaunchConfiguration("rate")
    loop = LaunchConfiguration("loop")
    namespace = LaunchConfiguration("namespace")
    log_level = LaunchConfiguration("log_level")
    sim_time = PythonExpression(["'", use_sim_time, "' == 'true' or '", bag, "' != ''"])
    loop_flag = PythonExpression(["'--loop' if '", loop, "'.lower() == 'true' else '--no-loop'"])

    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file", default_value=os.path.join(share, "config", "multicam.yaml"),
            description="parameter file of multicam_node",
        ),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/multicam.rviz"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 bag to play (empty: none)"),
        DeclareLaunchArgument("rate", default_value="1.0", description="bag replay speed factor"),
        DeclareLaunchArgument("loop", default_value="false", description="replay the bag again when it ends"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the node and RViz"),
        DeclareLaunchArgument(
            "log_level", default_value="info", description="ROS log level of the node, the replay and RViz",
        ),
        DeclareLaunchArgument(
            "localhost_shm", default_value="false",
            description="everything on this host: Fast DDS shared memory for full-size images (config/fastdds_localhost_shm.xml)",
        ),
        SetEnvironmentVariable(
            "FASTRTPS_DEFAULT_PROFILES_FILE", os.path.join(share, "config", "fastdds_localhost_shm.xml"),
            condition=IfCondition(LaunchConfiguration("localhost_shm")),
        ),
        Node(
            package="kp3d_ros",
            executable="multicam_node",
            name="multicam_node",
            namespace=namespace,
            output="screen",
            parameters=[params_file, {"use_sim_time": sim_time}],
            ros_arguments=["--log-level", log_level],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            namespace=namespace,
            arguments=["-d", os.path.join(share, "config", "multicam.rviz")],
            parameters=[{"use_sim_time": sim_time}],
            ros_arguments=["--log-level", log_level],
            condition=IfCondition(rviz),
        ),
        # kp3d replay (this package's console script) publishes /clock like `ros2 bag play --clock`
        # and needs no rosbag2 install. A plain process: launch_ros.Node would append --ros-args.
        # It starts with the node but plays only once the node subscribes to the bag's image topics.
        ExecuteProcess(
            cmd=[
                ExecutableInPackage(executable="kp3d", package="kp3d_ros"), "replay", bag,
                "--rate", rate, loop_flag, "--wait-subscribers", WAIT_SUBSCRIBERS_S, "--delay", DISCOVERY_DELAY_S,
                "--log-level", log_level,
            ],
            output="screen",
            condition=LaunchConfigurationNotEquals("bag", ""),
        ),
    ])
