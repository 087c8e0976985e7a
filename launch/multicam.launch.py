"""Launch the kp3d multi-camera node, optionally RViz and a bag replay.

    ros2 launch kp3d_ros multicam.launch.py [params_file:=...] [use_sim_time:=true] [rviz:=true] [bag:=DIR]
                                            [localhost_shm:=true]

params_file defaults to share/kp3d_ros/config/multicam.yaml; rviz opens config/multicam.rviz (fixed
frame "world", the node's world_frame); bag plays a rosbag2 bag with ``kp3d replay`` (publishes /clock)
(use_sim_time is then set to true automatically unless given).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition, LaunchConfigurationNotEquals
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.substitutions import ExecutableInPackage


def generate_launch_description():
    share = get_package_share_directory("kp3d_ros")
    params_file = LaunchConfiguration("params_file")
    use_sim_time = LaunchConfiguration("use_sim_time")
    rviz = LaunchConfiguration("rviz")
    bag = LaunchConfiguration("bag")
    sim_time = PythonExpression(["'", use_sim_time, "' == 'true' or '", bag, "' != ''"])

    return LaunchDescription([
        DeclareLaunchArgument(
            "params_file", default_value=os.path.join(share, "config", "multicam.yaml"),
            description="parameter file of multicam_node",
        ),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag replay)"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/multicam.rviz"),
        DeclareLaunchArgument("bag", default_value="", description="rosbag2 bag to play (empty: none)"),
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
            output="screen",
            parameters=[params_file, {"use_sim_time": sim_time}],
        ),
        Node(
            package="rviz2",
            executable="rviz2",
            name="rviz2",
            arguments=["-d", os.path.join(share, "config", "multicam.rviz")],
            parameters=[{"use_sim_time": sim_time}],
            condition=IfCondition(rviz),
        ),
        # kp3d replay (this package's console script) publishes /clock like `ros2 bag play --clock`
        # and needs no rosbag2 install. A plain process: launch_ros.Node would append --ros-args.
        ExecuteProcess(
            cmd=[ExecutableInPackage(executable="kp3d", package="kp3d_ros"), "replay", bag],
            output="screen",
            condition=LaunchConfigurationNotEquals("bag", ""),
        ),
    ])
