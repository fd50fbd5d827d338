"""metaloihi.bridge"""
