"""metaloihi.sim"""
