"""COVESA Vehicle Signal Specification (VSS) paths fleetlink uses by name.

Telemetry may carry any VSS path; these are the ones the platform itself reads or writes.
"""

from typing import Final

VSS_PATH_PATTERN: Final = r"^Vehicle(\.[A-Za-z0-9_]+)+$"

SPEED: Final = "Vehicle.Speed"
LATITUDE: Final = "Vehicle.CurrentLocation.Latitude"
LONGITUDE: Final = "Vehicle.CurrentLocation.Longitude"
HEADING: Final = "Vehicle.CurrentLocation.Heading"
ODOMETER: Final = "Vehicle.TraveledDistance"
AMBIENT_TEMPERATURE: Final = "Vehicle.Exterior.AirTemperature"
BATTERY_STATE_OF_CHARGE: Final = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
BATTERY_STATE_OF_HEALTH: Final = "Vehicle.Powertrain.TractionBattery.StateOfHealth"
FUEL_LEVEL: Final = "Vehicle.Powertrain.FuelSystem.RelativeLevel"
TRUNK_REAR_IS_OPEN: Final = "Vehicle.Body.Trunk.Rear.IsOpen"
TRUNK_REAR_IS_LOCKED: Final = "Vehicle.Body.Trunk.Rear.IsLocked"
DOOR_ROW1_DRIVER_IS_OPEN: Final = "Vehicle.Cabin.Door.Row1.DriverSide.IsOpen"
DOOR_ROW1_DRIVER_IS_LOCKED: Final = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"
TIRE_PRESSURE_FRONT_LEFT: Final = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"
TIRE_PRESSURE_FRONT_RIGHT: Final = "Vehicle.Chassis.Axle.Row1.Wheel.Right.Tire.Pressure"
TIRE_PRESSURE_REAR_LEFT: Final = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"
TIRE_PRESSURE_REAR_RIGHT: Final = "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure"
# front left, front right, rear left, rear right (kPa)
TIRE_PRESSURES: Final = (
    TIRE_PRESSURE_FRONT_LEFT,
    TIRE_PRESSURE_FRONT_RIGHT,
    TIRE_PRESSURE_REAR_LEFT,
    TIRE_PRESSURE_REAR_RIGHT,
)
# the air in each tire, as its TPMS sensor reads it (°C), same order
TIRE_TEMPERATURES: Final = tuple(
    wheel.replace(".Pressure", ".Temperature") for wheel in TIRE_PRESSURES
)
HAZARD_LIGHTS_ON: Final = "Vehicle.Body.Lights.Hazard.IsSignaling"
HVAC_IS_ON: Final = "Vehicle.Cabin.HVAC.IsAirConditioningActive"
HVAC_TARGET_TEMPERATURE: Final = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
BATTERY_IS_CHARGING: Final = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
