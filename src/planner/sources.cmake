list(APPEND FASTCONV_SOURCES src/planner/solvers.cpp src/planner/planner.cpp src/planner/cost_model.cpp
                             src/planner/measure.cpp src/planner/plan.cpp src/planner/wisdom.cpp
                             src/planner/padded_copy.cpp src/planner/calibrate.cpp)
